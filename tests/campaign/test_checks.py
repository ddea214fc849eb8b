"""The campaign's checks can fail: each is shown a world where its promise is broken."""

import secrets
import uuid

import asyncpg

from activities.otp import code_digest
from domain.channels import Channel, mask_destination
from tests.support import create_invoice
from tools.chaos.checks import CodeSend, check_payments, tie_messages_to_sends
from tools.chaos.hostile import AttackResult, brute_force_verdict
from tools.standins.faulty_providers import AcceptedMessages

KEY = b"campaign-check-test-key"


def _send(to: str, code: str, seq: int = 1, message_id: str | None = None) -> CodeSend:
    run_id = str(uuid.uuid4())
    channel = Channel.EMAIL if "@" in to else Channel.SMS
    return CodeSend(
        workflow_id="pay-invoice-INV-X",
        run_id=run_id,
        send_seq=seq,
        destination_masked=mask_destination(channel, to),
        code_digest=code_digest(KEY, run_id, seq, code),
        provider="twilio",
        provider_message_id=message_id,
        sent=message_id is not None,
    )


def test_a_second_code_for_one_send_is_an_orphan_even_with_the_same_recipient() -> None:
    inbox = AcceptedMessages()
    to = "+15555550142"
    inbox.accepted("twilio", "SM1", to, "Your code is 111111")
    inbox.accepted("twilio", "SM2", to, "Your code is 222222")  # a retry that minted another code
    ledger = tie_messages_to_sends(inbox.messages(), [_send(to, "111111", message_id="SM1")], KEY)
    assert [m.message_id for m in ledger.orphans] == ["SM2"]
    assert not ledger.misrecorded


def test_the_same_code_twice_is_a_repeat_not_a_second_code() -> None:
    inbox = AcceptedMessages()
    to = "+15555550143"
    inbox.accepted("twilio", "SM1", to, "Your code is 333333")
    inbox.accepted("twilio", "SM2", to, "Your code is 333333")  # the body alone would hide nothing here
    send = _send(to, "333333", message_id="SM2")
    ledger = tie_messages_to_sends(inbox.messages(), [send], KEY)
    assert not ledger.orphans and not ledger.misrecorded
    assert len(ledger.by_send[(send.run_id, 1)]) == 2


def test_a_send_recording_a_message_the_provider_never_delivered_for_it_is_caught() -> None:
    inbox = AcceptedMessages()
    inbox.accepted("twilio", "SM1", "+15555550144", "Your code is 444444")
    ledger = tie_messages_to_sends(inbox.messages(), [_send("+15555550144", "444444", message_id="SM9")], KEY)
    assert ledger.misrecorded and "SM9" in ledger.misrecorded[0]


def test_sendgrid_key_must_name_the_send_its_code_belongs_to() -> None:
    inbox = AcceptedMessages()
    send = _send("ada-check@example.com", "555555", seq=2, message_id="sg-1")
    inbox.accepted(
        "sendgrid", "sg-1", "ada-check@example.com", "Code 555555", "pay-invoice-INV-X/other/code/2"
    )
    assert tie_messages_to_sends(inbox.messages(), [send], KEY).misrecorded
    good = AcceptedMessages()
    good.accepted(
        "sendgrid", "sg-1", "ada-check@example.com", "Code 555555", f"pay-invoice-INV-X/{send.run_id}/code/2"
    )
    assert not tie_messages_to_sends(good.messages(), [send], KEY).misrecorded


async def test_a_debit_nobody_recorded_breaks_the_payments_promise(db_pool: asyncpg.Pool) -> None:
    since = await db_pool.fetchval("SELECT now()")
    clean = await create_invoice(db_pool)
    held, rows_held = await check_payments(db_pool, [clean.invoice_id], since=since)
    assert held.held and rows_held.held, (held, rows_held)
    # A second debit under a key no payment row owns: what a run-scoped key allowed before.
    key = f"PAY-UNRECORDED-{secrets.token_hex(4)}"
    await db_pool.execute(
        "INSERT INTO sandbox_debits (id, instance, idempotency_key, request_digest, amount_cents, currency,"
        " routing_number, account_last4, scenario, status)"
        " VALUES ($1, 'campaign-check', $2, 'x', 125000, 'USD', '011000015', '6789', 'settle', 'processing')",
        f"dbt-{secrets.token_hex(6)}",
        key,
    )
    broken, rows = await check_payments(db_pool, [clean.invoice_id], since=since)
    assert not broken.held
    assert "1 debits no payment recorded" in broken.measured and key in broken.detail
    assert not rows.held and key in rows.detail


def test_brute_force_verdict_needs_real_checks_and_no_more_than_the_limit() -> None:
    def result(invoice: str, checked: int, answered: int = 8, verified: int = 0) -> AttackResult:
        return AttackResult(
            invoice, guesses_sent=8, guesses_answered=answered, verified=verified, checked_in_db=checked
        )

    assert brute_force_verdict([result("A", 5), result("B", 5)], {"A", "B"}, max_failed=5).held
    assert not brute_force_verdict([result("A", 6)], {"A"}, max_failed=5).held  # too many checked
    assert not brute_force_verdict([result("A", 2)], {"A"}, max_failed=5).held  # guesses never checked
    assert not brute_force_verdict([result("A", 0, answered=0)], set(), max_failed=5).held  # no code at all
    assert not brute_force_verdict([result("A", 5, verified=1)], {"A"}, max_failed=5).held  # a guess got in
