"""The campaign's checks can fail: each is shown a world where its promise is broken."""

import secrets
import uuid
from dataclasses import replace

import asyncpg

from activities.otp import code_digest
from domain.channels import Channel, mask_destination
from domain.input_rules import is_valid_aba_routing
from tests.support import create_invoice
from tools.bench.driver import BenchInvoice
from tools.chaos.checks import CodeSend, check_payments, tie_messages_to_sends
from tools.chaos.customers import CustomerRecord, Plan
from tools.chaos.hostile import AttackResult, brute_force_verdict
from tools.chaos.lifecycle_checks import (
    InvoiceFacts,
    LifecycleFacts,
    PaymentFacts,
    check_balances,
    check_events_once,
    check_statuses,
    lifecycle_promises,
)
from tools.chaos.lifecycle_phase import (
    FAILS,
    NOT_VALIDATED,
    RETURNED,
    SETTLES,
    Debtor,
    SandboxAccount,
    check_test_accounts,
    routing_number,
)
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


def _lifecycle_world() -> LifecycleFacts:
    """One debit settled, one returned after settling: every lifecycle promise holds."""
    return LifecycleFacts(
        payments=[
            PaymentFacts("PAY-1", "INV-1", 12500, "settled", "settled", "settled"),
            PaymentFacts("PAY-2", "INV-2", 12500, "returned", "returned", "returned"),
            PaymentFacts("PAY-3", "INV-3", 12500, "declined", "declined"),
        ],
        invoices=[
            InvoiceFacts("INV-1", "paid", 12500, 0),
            InvoiceFacts("INV-2", "open", 12500, 12500),
            InvoiceFacts("INV-3", "open", 12500, 12500),
            InvoiceFacts("INV-4", "open", 12500, 12500),  # its account failed validation: no payment
        ],
        processor_events=["evt_1p", "evt_1s", "evt_2p", "evt_2s", "evt_2r"],
        stored_events=["evt_1p", "evt_1s", "evt_2p", "evt_2s", "evt_2r"],
        outcome_audits=[
            ("PAY-1", "PAYMENT_SETTLED"),
            ("PAY-2", "PAYMENT_SETTLED"),
            ("PAY-2", "PAYMENT_RETURNED"),
        ],
    )


def test_the_lifecycle_promises_hold_in_a_world_that_keeps_them() -> None:
    promises = lifecycle_promises(_lifecycle_world())
    assert [p.name for p in promises] == [
        "every payment's status equals the processor's",
        "invoice balances add up",
        "0 events applied twice",
    ]
    assert all(p.held for p in promises), promises


def test_a_payment_or_workflow_disagreeing_with_the_processor_breaks_the_status_promise() -> None:
    world = _lifecycle_world()
    world.payments[1] = replace(world.payments[1], ours="settled")  # the return never applied
    broken = check_statuses(world)
    assert not broken.held and "PAY-2: ours settled, processor returned" in broken.detail
    world = _lifecycle_world()
    world.payments[0] = replace(world.payments[0], workflow="processing")  # the table moved, the workflow not
    assert not check_statuses(world).held
    world = _lifecycle_world()
    world.payments.append(PaymentFacts("PAY-9", "INV-4", 12500, "processing", None))  # no debit at all
    assert not check_statuses(world).held


def test_a_balance_not_following_from_the_payments_breaks_the_balance_promise() -> None:
    world = _lifecycle_world()
    world.invoices[1] = InvoiceFacts("INV-2", "open", 12500, 0)  # returned, balance never restored
    broken = check_balances(world)
    assert not broken.held and "INV-2: open 0, expected open 12500" in broken.detail
    world = _lifecycle_world()
    world.invoices[0] = InvoiceFacts("INV-1", "pending", 12500, 0)  # settled, invoice still pending
    assert not check_balances(world).held
    world = _lifecycle_world()
    world.payments.append(PaymentFacts("PAY-5", "INV-4", 12500, "processing", "processing", "processing"))
    assert not check_balances(world).held  # a debit in flight holds the invoice: pending, not open


def test_an_event_or_outcome_taking_effect_twice_breaks_the_events_promise() -> None:
    world = _lifecycle_world()
    world.stored_events.append("evt_2r")  # the duplicate webhook stored as a second event
    broken = check_events_once(world)
    assert not broken.held and "1 stored twice" in broken.measured
    world = _lifecycle_world()
    world.outcome_audits.append(("PAY-2", "PAYMENT_RETURNED"))  # applied twice: a second balance restore
    broken = check_events_once(world)
    assert not broken.held and "2 balance restores for 1" in broken.measured
    world = _lifecycle_world()
    world.stored_events.remove("evt_2r")  # dropped, and reconciliation never delivered it
    assert not check_events_once(world).held
    world = _lifecycle_world()
    world.outcome_audits.append(("PAY-1", "PAYMENT_FAILED"))  # an outcome the processor never had
    assert not check_events_once(world).held


def test_test_account_routing_numbers_pass_the_checksum_and_differ() -> None:
    numbers = [routing_number(n) for n in range(300)]
    assert all(is_valid_aba_routing(n) for n in numbers)
    assert len(set(numbers)) == len(numbers)


def test_a_debit_ending_otherwise_than_its_test_account_says_breaks_the_accounts_promise() -> None:
    def debtor(invoice_id: str, account: SandboxAccount, attempt: str) -> Debtor:
        record = CustomerRecord(
            BenchInvoice(invoice_id, "a@example.com", "+15555550100"), Plan("pay", "email")
        )
        record.final_status = attempt
        return Debtor(record, account)

    world = _lifecycle_world()
    assert check_test_accounts(
        [
            debtor("INV-1", SETTLES, "PAID"),
            debtor("INV-2", RETURNED, "PAID"),
            debtor("INV-4", NOT_VALIDATED, "AWAITING_PAYMENT"),
        ],
        world,
    ).held
    # An R01 account whose debit settled, and a validation failure that was debited anyway.
    world.payments.append(PaymentFacts("PAY-5", "INV-4", 12500, "processing", "processing", "processing"))
    broken = check_test_accounts(
        [debtor("INV-1", FAILS, "PAID"), debtor("INV-4", NOT_VALIDATED, "AWAITING_PAYMENT")], world
    )
    assert (
        not broken.held and "fails R01 0/1" in broken.measured and "validation fails 0/1" in broken.measured
    )
