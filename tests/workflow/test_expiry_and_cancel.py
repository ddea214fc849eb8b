"""The attempt's clocks (idle expiry, payment window) and cancelling, with short configured timers.

The clocks that must not run out before the steps ahead of them run on the time-skipping server: its
time moves only while a test awaits the run's result, so no step can race the deadline however loaded
the machine, and the wait costs nothing. The tests wait for the run to end (an event) and compare the
expiry with the deadline the attempt announced.
"""

import pytest

from domain.attempt import CancelInput, ClientContext
from domain.channels import Channel
from domain.errors import RefusalType
from domain.status import PaymentStatus
from starters.workflow_client import AttemptRefused
from tests.conftest import HarnessFactory
from tests.support import Harness
from tests.workflow.conftest import SkippingHarnessFactory
from tests.workflow.steps import BROWSER, Attempt, audit_rows, audit_types, new_invoice

STAFF = ClientContext(actor="staff:ops", ip="198.51.100.4")


@pytest.mark.timeskipping
async def test_idle_attempt_expires_and_each_action_moves_the_deadline(
    skipping_harness_factory: SkippingHarnessFactory,
) -> None:
    async with skipping_harness_factory(attempt_idle_seconds=8) as h:
        inv = await new_invoice(h.pool)
        attempt = await Attempt.start(h, inv)
        opened_deadline = attempt.state.idle_expires_at
        assert opened_deadline is not None
        sent = await attempt.request_code(Channel.EMAIL)
        moved = (await attempt.current()).idle_expires_at
        assert moved is not None and moved > opened_deadline

        outcome = await attempt.outcome()
        assert outcome.status is PaymentStatus.EXPIRED
        assert outcome.reason and "No customer action" in outcome.reason

        expired = (await audit_rows(h.pool, inv.invoice_id))[-1]
        assert expired["event_type"] == "ATTEMPT_EXPIRED"
        assert expired["details"]["from_status"] == "AWAITING_CODE"
        assert expired["payer_contact_id"] == inv.payer_contact_id
        assert expired["occurred_at"] >= moved  # not before the deadline the last action set
        # ... and at it: skipped time would hide a deadline that is later than announced.
        assert (expired["occurred_at"] - moved).total_seconds() < 5
        assert (moved - sent.resend_available_at).total_seconds() <= 8

        # An expired attempt leaves nothing that refuses the next one (PostgreSQL's standing, the
        # run id); the portal's own reopen after expiry is in the next test, on the dev server.
        await h.gateway.check_can_open(inv.invoice_id)
        again = await Attempt.start(h, inv)
        assert again.run_id != attempt.run_id
        assert again.state.status is PaymentStatus.CHOOSING_CHANNEL


async def test_idle_expiry_while_choosing_a_channel(harness_factory: HarnessFactory) -> None:
    async with harness_factory(attempt_idle_seconds=1) as h:
        inv = await new_invoice(h.pool)
        attempt = await Attempt.open(h, inv)
        assert (await attempt.outcome()).status is PaymentStatus.EXPIRED
        expired = (await audit_rows(h.pool, inv.invoice_id))[-1]
        assert (expired["event_type"], expired["details"]["from_status"]) == (
            "ATTEMPT_EXPIRED",
            "CHOOSING_CHANNEL",
        )

        # An expired attempt never blocks the next one.
        again = await Attempt.open(h, inv)
        assert again.run_id != attempt.run_id
        assert again.state.status is PaymentStatus.CHOOSING_CHANNEL


@pytest.mark.timeskipping
async def test_payment_window_after_verification(skipping_harness_factory: SkippingHarnessFactory) -> None:
    async with skipping_harness_factory(payment_window_seconds=8) as h:
        inv = await new_invoice(h.pool)
        attempt = await Attempt.start(h, inv)
        await attempt.verified(Channel.SMS)
        state = await attempt.current()
        assert state.status is PaymentStatus.AWAITING_PAYMENT
        assert state.payment_due_by is not None
        assert state.idle_expires_at is not None and state.payment_due_by < state.idle_expires_at

        outcome = await attempt.outcome()
        assert outcome.status is PaymentStatus.EXPIRED
        assert outcome.reason and "payment window" in outcome.reason
        rows = await audit_rows(h.pool, inv.invoice_id)
        verified = next(r for r in rows if r["event_type"] == "OTP_VERIFIED")
        expired = rows[-1]
        assert expired["event_type"] == "ATTEMPT_EXPIRED"
        assert expired["details"]["from_status"] == "AWAITING_PAYMENT"
        assert expired["occurred_at"] >= state.payment_due_by
        assert (expired["occurred_at"] - state.payment_due_by).total_seconds() < 5  # the window, not idleness
        assert abs((state.payment_due_by - verified["occurred_at"]).total_seconds() - 8) < 5

        with pytest.raises(AttemptRefused) as refused:
            await attempt.pay()
        assert refused.value.type is RefusalType.INVALID_STATE
        assert refused.value.status is PaymentStatus.EXPIRED
        assert (
            await h.pool.fetchval("SELECT count(*) FROM payments WHERE invoice_id = $1", inv.invoice_id) == 0
        )


@pytest.mark.parametrize("stage", ["CHOOSING_CHANNEL", "AWAITING_CODE", "AWAITING_PAYMENT"])
async def test_cancel_ends_the_attempt(harness: Harness, stage: str) -> None:
    inv = await new_invoice(harness.pool)
    attempt = await Attempt.open(harness, inv)
    if stage == "AWAITING_CODE":
        await attempt.request_code(Channel.SMS)
    elif stage == "AWAITING_PAYMENT":
        await attempt.verified(Channel.SMS)
    assert (await attempt.current()).status.value == stage

    await harness.gateway.cancel(
        inv.invoice_id, attempt.run_id, CancelInput(reason="wrong invoice", client=STAFF)
    )
    outcome = await attempt.outcome()
    assert (outcome.status, outcome.reason) == (PaymentStatus.CANCELLED, "wrong invoice")

    cancelled = (await audit_rows(harness.pool, inv.invoice_id))[-1]
    assert cancelled["event_type"] == "ATTEMPT_CANCELLED"
    assert cancelled["details"] == {"from_status": stage, "reason": "wrong invoice"}
    assert (cancelled["actor"], cancelled["ip"]) == ("staff:ops", "198.51.100.4")
    assert cancelled["payer_contact_id"] == inv.payer_contact_id

    with pytest.raises(AttemptRefused) as refused:
        await harness.gateway.cancel(inv.invoice_id, attempt.run_id, CancelInput())
    assert refused.value.status is PaymentStatus.CANCELLED
    assert (await audit_types(harness.pool, inv.invoice_id)).count("ATTEMPT_CANCELLED") == 1


async def test_reopening_right_after_cancel_starts_a_new_attempt(harness: Harness) -> None:
    """The customer cancels and opens the link again at once (SPEC §2: a cancelled attempt lets a new one start)."""
    inv = await new_invoice(harness.pool)
    attempt = await Attempt.open(harness, inv)
    await harness.gateway.cancel(inv.invoice_id, attempt.run_id, CancelInput(client=BROWSER))

    again = await harness.gateway.open(inv.invoice_id, BROWSER)
    assert again.run_id != attempt.run_id
    assert again.status is PaymentStatus.CHOOSING_CHANNEL
    assert (await attempt.outcome()).status is PaymentStatus.CANCELLED
