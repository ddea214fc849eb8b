"""Submitting the debit to the sandbox processor (SPEC §6): declines, and never two debits.

The processor refusing the request itself runs through the real service: tests/lifecycle/test_processor_refusals.py.
"""

import asyncio

import pytest

from domain.channels import Channel
from domain.errors import RefusalType
from domain.policy import PaymentMethod
from domain.sandbox import DECLINING_ACCOUNTS
from domain.status import PaymentStatus
from starters.workflow_client import AttemptNotFound, AttemptRefused
from tests.support import Harness
from tests.workflow.steps import Attempt, audit_rows, audit_types, bank_details, new_invoice

SPEC_DECLINES = {
    "000111111113": "account_closed",
    "000222222227": "insufficient_funds",
    "000333333335": "debit_not_authorized",
}


def test_sandbox_publishes_exactly_the_spec_accounts() -> None:
    assert SPEC_DECLINES == DECLINING_ACCOUNTS


@pytest.mark.parametrize(
    ("account", "reason"), sorted(SPEC_DECLINES.items()), ids=sorted(SPEC_DECLINES.values())
)
async def test_sandbox_test_accounts_decline(harness: Harness, account: str, reason: str) -> None:
    inv = await new_invoice(harness.pool)
    attempt = await Attempt.open(harness, inv)
    await attempt.verified(Channel.EMAIL)

    result = await attempt.pay(bank_details(account, PaymentMethod.ACH))
    assert result.status is PaymentStatus.DECLINED
    assert (result.payment.accepted, result.payment.decline_reason) == (False, reason)
    assert result.payment.account_last4 == account[-4:]
    outcome = await attempt.outcome()
    assert outcome.status is PaymentStatus.DECLINED
    assert outcome.reason and reason in outcome.reason

    declined = (await audit_rows(harness.pool, inv.invoice_id))[-1]
    assert declined["event_type"] == "PAYMENT_DECLINED"
    assert declined["details"]["decline_reason"] == reason
    assert declined["payer_contact_id"] == inv.payer_contact_id
    payment = await harness.pool.fetchrow("SELECT * FROM payments WHERE invoice_id = $1", inv.invoice_id)
    assert (payment["status"], payment["decline_reason"], payment["method"]) == ("declined", reason, "ach")
    assert payment["account_last4"] == account[-4:]
    invoice = await harness.pool.fetchrow(
        "SELECT status, balance_cents FROM invoices WHERE id = $1", inv.invoice_id
    )
    assert (invoice["status"], invoice["balance_cents"]) == ("open", 125000)


async def test_after_a_decline_a_new_attempt_can_pay(harness: Harness) -> None:
    inv = await new_invoice(harness.pool)
    first = await Attempt.open(harness, inv)
    await first.verified(Channel.SMS)
    assert (await first.pay(bank_details("000222222227"))).status is PaymentStatus.DECLINED
    await first.outcome()

    second = await Attempt.open(harness, inv)
    assert second.run_id != first.run_id
    await second.verified(Channel.SMS)
    assert (await second.pay()).status is PaymentStatus.PAID
    statuses = await harness.pool.fetch(
        "SELECT status FROM payments WHERE invoice_id = $1 ORDER BY created_at", inv.invoice_id
    )
    assert [r["status"] for r in statuses] == ["declined", "processing"]


async def test_two_submissions_at_once_debit_once(harness: Harness) -> None:
    """Two tabs press Pay together: one debit; the other is told the attempt moved on."""
    inv = await new_invoice(harness.pool)
    attempt = await Attempt.open(harness, inv)
    await attempt.verified(Channel.SMS)

    results = await asyncio.gather(attempt.pay(), attempt.pay(), return_exceptions=True)
    paid = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(paid) == 1 and paid[0].status is PaymentStatus.PAID
    assert len(refused) == 1 and isinstance(refused[0], AttemptRefused | AttemptNotFound)
    if isinstance(refused[0], AttemptRefused):
        assert refused[0].type is RefusalType.INVALID_STATE

    assert (
        await harness.pool.fetchval("SELECT count(*) FROM payments WHERE invoice_id = $1", inv.invoice_id)
        == 1
    )
    assert (
        await harness.pool.fetchval(
            "SELECT count(*) FROM sandbox_debits l JOIN payments p ON p.idempotency_key = l.idempotency_key"
            " WHERE p.invoice_id = $1",
            inv.invoice_id,
        )
        == 1
    )
    assert (await audit_types(harness.pool, inv.invoice_id)).count("PAYMENT_SUBMITTED") == 1


async def test_a_retried_post_gets_the_first_answer(harness: Harness) -> None:
    """The portal passes an update id per request: the same id twice is one debit, one answer."""
    inv = await new_invoice(harness.pool, kind="deposit", amount_cents=20000)
    attempt = await Attempt.open(harness, inv)

    first, second = await asyncio.gather(
        attempt.pay(request_id="pay-request-1"), attempt.pay(request_id="pay-request-1")
    )
    assert first == second
    assert first.status is PaymentStatus.PAID
    await attempt.outcome()
    # Even after the attempt closed, the retried request is answered from the first one.
    assert await attempt.pay(request_id="pay-request-1") == first
    assert (
        await harness.pool.fetchval("SELECT count(*) FROM payments WHERE invoice_id = $1", inv.invoice_id)
        == 1
    )
