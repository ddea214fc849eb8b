"""One-time passcodes (SPEC §2 defaults): wrong entries, lockout, expiry, single use, resends."""

from datetime import datetime, timedelta

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.otp import OtpActivities
from domain.activity_io import AttemptRef, CheckCodeRequest
from domain.attempt import AttemptState, CancelInput, PayInvoiceInput, workflow_id_for
from domain.channels import Channel
from domain.errors import RefusalType
from domain.policy import AttemptTimers
from domain.status import PaymentStatus
from starters.workflow_client import AttemptRefused
from tests.conftest import HarnessFactory
from tests.support import Harness
from tests.workflow.conftest import SkippingHarnessFactory
from tests.workflow.steps import (
    BROWSER,
    Attempt,
    audit_rows,
    audit_types,
    lockout_passes,
    new_invoice,
    outbox_count,
    sleep_past,
    wrong_code_for,
)
from workflows.pay_invoice import PayInvoiceWorkflow

DEFAULTS = AttemptTimers()
LOCKOUT = 600


async def test_wrong_codes_count_down_and_the_fifth_locks(harness: Harness) -> None:
    assert harness.settings.otp_max_failed == DEFAULTS.max_failed == 5
    inv = await new_invoice(harness.pool)
    attempt = await Attempt.open(harness, inv)
    assert attempt.state.attempts_remaining == 5
    _, code = await attempt.send_and_read(Channel.SMS)

    for remaining in (4, 3, 2, 1):
        result = await attempt.verify(wrong_code_for(code))
        assert not result.verified
        assert (result.status, result.attempts_remaining, result.reason) == (
            PaymentStatus.AWAITING_CODE,
            remaining,
            "mismatch",
        )
    last = await attempt.verify(wrong_code_for(code))
    assert (last.verified, last.status, last.attempts_remaining) == (False, PaymentStatus.LOCKED, 0)

    # The right code no longer helps: the attempt is over.
    with pytest.raises(AttemptRefused) as refused:
        await attempt.verify(code)
    assert refused.value.type is RefusalType.INVALID_STATE
    assert refused.value.status is PaymentStatus.LOCKED

    outcome = await attempt.outcome()
    assert outcome.status is PaymentStatus.LOCKED and outcome.reason
    types = await audit_types(harness.pool, inv.invoice_id)
    assert types.count("OTP_VERIFY_FAILED") == 5
    assert types[-1] == "OTP_LOCKED"
    locked = (await audit_rows(harness.pool, inv.invoice_id))[-1]
    assert locked["details"]["failed_checks"] == 5
    assert locked["payer_contact_id"] == inv.payer_contact_id

    # The default lockout window (30 minutes) refuses a new attempt, saying when to come back.
    with pytest.raises(AttemptRefused) as refused:
        await harness.gateway.open(inv.invoice_id, BROWSER)
    assert refused.value.type is RefusalType.INVOICE_LOCKED
    assert refused.value.retry_after is not None
    assert DEFAULTS.lockout_seconds - 60 < refused.value.retry_after <= DEFAULTS.lockout_seconds + 1


async def test_lockout_refuses_a_new_attempt_until_the_window_passes(harness_factory: HarnessFactory) -> None:
    # The window passes by moving its end in PostgreSQL (`lockout_passes`), never by waiting.
    async with harness_factory(otp_lockout_seconds=LOCKOUT, otp_max_failed=2) as h:
        inv = await new_invoice(h.pool)
        attempt = await Attempt.open(h, inv)
        _, code = await attempt.send_and_read(Channel.EMAIL)
        await attempt.verify(wrong_code_for(code))
        assert (await attempt.verify(wrong_code_for(code))).status is PaymentStatus.LOCKED
        await attempt.outcome()

        with pytest.raises(AttemptRefused) as refused:
            await h.gateway.open(inv.invoice_id, BROWSER)
        assert refused.value.type is RefusalType.INVOICE_LOCKED
        assert (
            refused.value.retry_after is not None and LOCKOUT - 60 < refused.value.retry_after <= LOCKOUT + 1
        )

        # A start that skips the gateway's PostgreSQL check is refused by the workflow itself.
        with pytest.raises(WorkflowFailureError) as failed:
            await h.client.execute_workflow(
                PayInvoiceWorkflow.run,
                PayInvoiceInput(invoice_id=inv.invoice_id),
                id=workflow_id_for(inv.invoice_id),
                task_queue=h.task_queue,
            )
        assert isinstance(failed.value.cause, ApplicationError)
        assert failed.value.cause.type == RefusalType.INVOICE_LOCKED.value

        await lockout_passes(h.pool, inv.invoice_id)
        again = await Attempt.open(h, inv)
        assert again.run_id != attempt.run_id
        assert again.state.status is PaymentStatus.CHOOSING_CHANNEL
        assert again.state.attempts_remaining == 2
        await again.verified(Channel.EMAIL)
        assert (await again.pay()).status is PaymentStatus.PAID


async def test_cancelling_and_reopening_keeps_the_wrong_code_count(harness: Harness) -> None:
    inv = await new_invoice(harness.pool)
    first = await Attempt.open(harness, inv)
    _, code = await first.send_and_read(Channel.SMS)
    await first.verify(wrong_code_for(code))
    assert (await first.verify(wrong_code_for(code))).attempts_remaining == 3
    await harness.gateway.cancel(inv.invoice_id, first.run_id, _cancel())
    assert (await first.outcome()).status is PaymentStatus.CANCELLED

    second = await Attempt.open(harness, inv)
    assert second.run_id != first.run_id
    assert second.state.attempts_remaining == 3
    _, code = await second.send_and_read(Channel.SMS)
    await second.verify(wrong_code_for(code))
    await second.verify(wrong_code_for(code))
    assert (await second.verify(wrong_code_for(code))).status is PaymentStatus.LOCKED
    with pytest.raises(AttemptRefused) as refused:
        await harness.gateway.open(inv.invoice_id, BROWSER)
    assert refused.value.type is RefusalType.INVOICE_LOCKED


async def test_a_good_code_clears_earlier_wrong_entries_for_the_next_attempt(harness: Harness) -> None:
    inv = await new_invoice(harness.pool)
    first = await Attempt.open(harness, inv)
    _, code = await first.send_and_read(Channel.SMS)
    await first.verify(wrong_code_for(code))
    assert (await first.verify(code)).attempts_remaining == 4
    await harness.gateway.cancel(inv.invoice_id, first.run_id, _cancel())
    await first.outcome()

    second = await Attempt.open(harness, inv)
    assert second.state.attempts_remaining == 5


async def test_expired_code_does_not_verify(harness_factory: HarnessFactory) -> None:
    async with harness_factory(otp_code_ttl_seconds=1) as h:  # nothing needs the code before it expires
        inv = await new_invoice(h.pool)
        attempt = await Attempt.open(h, inv)
        sent, code = await attempt.send_and_read(Channel.SMS)
        assert _about(sent.code_expires_at - _sent_at(await attempt.current()), seconds=1)

        await sleep_past(sent.code_expires_at)
        result = await attempt.verify(code)
        assert (result.verified, result.reason, result.status) == (
            False,
            "code_expired",
            PaymentStatus.AWAITING_CODE,
        )
        assert result.attempts_remaining == 5  # an expired code is no guess at the code

        _, fresh = await attempt.send_and_read(Channel.SMS)
        assert (await attempt.verify(fresh)).verified


async def test_code_is_single_use(harness: Harness) -> None:
    inv = await new_invoice(harness.pool)
    attempt = await Attempt.open(harness, inv)
    _, code = await attempt.send_and_read(Channel.EMAIL)
    assert (await attempt.verify(code)).verified

    # The attempt has moved on, so the workflow refuses a second entry ...
    with pytest.raises(AttemptRefused) as refused:
        await attempt.verify(code)
    assert refused.value.type is RefusalType.INVALID_STATE
    assert refused.value.status is PaymentStatus.AWAITING_PAYMENT

    # ... and the check itself refuses to accept the code twice (a retried or replayed check
    # with a new sequence number must not turn a used code into a second verification).
    otp = OtpActivities(
        harness.pool,
        hmac_key=_hmac_key(harness),
        senders={},
        company_name="t",
        audit_key=harness.settings.audit_key(),
    )
    ref = AttemptRef(
        workflow_id=attempt.state.workflow_id,
        run_id=attempt.run_id,
        invoice_id=inv.invoice_id,
        customer_id=inv.customer_id,
        payer_contact_id=inv.payer_contact_id,
    )
    again = await ActivityEnvironment().run(
        otp.check_code,
        CheckCodeRequest(
            attempt=ref,
            send_seq=1,
            check_seq=99,
            code=code,
            channel=Channel.SMS,
            destination="•••-•••-0000",
            attempts_remaining_if_wrong=4,
            failed_checks_if_wrong=1,
        ),
    )
    assert (again.ok, again.reason) == (False, "used")
    assert (
        await harness.pool.fetchval(
            "SELECT count(*) FROM otp_checks WHERE run_id = $1 AND ok", attempt.run_id
        )
        == 1
    )


async def test_a_new_code_voids_the_old_one(harness: Harness) -> None:
    inv = await new_invoice(harness.pool)
    attempt = await Attempt.open(harness, inv)
    _, old = await attempt.send_and_read(Channel.SMS)
    _, new = await attempt.send_and_read(Channel.SMS)
    assert await outbox_count(harness.pool, attempt.run_id) == 2
    voided = await harness.pool.fetchval(
        "SELECT voided_at IS NOT NULL FROM otp_challenges WHERE run_id = $1 AND send_seq = 1", attempt.run_id
    )
    assert voided

    if old != new:  # two CSPRNG codes collide once in a million; then "old" is also "new"
        stale = await attempt.verify(old)
        assert not stale.verified and stale.attempts_remaining == 4
    assert (await attempt.verify(new)).verified


@pytest.mark.timeskipping
async def test_resend_waits_for_the_cooldown(
    skipping_harness_factory: SkippingHarnessFactory, time_skipping_env: WorkflowEnvironment
) -> None:
    # Inside one attempt the workflow keeps the cooldown on its own clock: the time-skipping server
    # lets it pass without waiting, and nothing can race it before the test skips.
    async with skipping_harness_factory(otp_resend_cooldown_seconds=6) as h:
        inv = await new_invoice(h.pool)
        attempt = await Attempt.start(h, inv)
        sent = await attempt.request_code(Channel.EMAIL)

        with pytest.raises(AttemptRefused) as refused:
            await attempt.request_code(Channel.EMAIL)
        assert refused.value.type is RefusalType.RESEND_TOO_SOON
        assert refused.value.retry_after is not None and 0 < refused.value.retry_after <= 6
        assert await outbox_count(h.pool, attempt.run_id) == 1

        now = await time_skipping_env.get_current_time()
        await time_skipping_env.sleep(sent.resend_available_at - now + timedelta(seconds=0.2))
        again = await attempt.request_code(Channel.EMAIL)
        assert again.resend_available_at > sent.resend_available_at
        assert await outbox_count(h.pool, attempt.run_id) == 2


async def test_default_cooldown_is_thirty_seconds(harness_factory: HarnessFactory) -> None:
    async with harness_factory(otp_resend_cooldown_seconds=DEFAULTS.resend_cooldown_seconds) as h:
        assert DEFAULTS.resend_cooldown_seconds == 30
        inv = await new_invoice(h.pool)
        attempt = await Attempt.open(h, inv)
        sent = await attempt.request_code(Channel.SMS)
        assert _about(sent.resend_available_at - _sent_at(await attempt.current()), seconds=30)

        with pytest.raises(AttemptRefused) as refused:
            await attempt.request_code(Channel.EMAIL)  # switching channel does not skip the wait
        assert refused.value.type is RefusalType.RESEND_TOO_SOON
        assert refused.value.retry_after is not None and 15 <= refused.value.retry_after <= 30


async def test_at_most_five_sends_per_attempt(harness: Harness) -> None:
    assert harness.settings.otp_max_sends == DEFAULTS.max_sends == 5
    inv = await new_invoice(harness.pool)
    attempt = await Attempt.open(harness, inv)
    assert attempt.state.sends_remaining == 5
    for n in range(5):
        await attempt.request_code(Channel.SMS if n % 2 else Channel.EMAIL)
    assert (await attempt.current()).sends_remaining == 0

    with pytest.raises(AttemptRefused) as refused:
        await attempt.request_code(Channel.SMS)
    assert refused.value.type is RefusalType.TOO_MANY_SENDS
    assert await outbox_count(harness.pool, attempt.run_id) == 5
    assert (await audit_types(harness.pool, inv.invoice_id)).count("OTP_SENT") == 5


async def test_switching_channel_on_resend(harness: Harness) -> None:
    inv = await new_invoice(harness.pool)
    attempt = await Attempt.open(harness, inv)
    _, by_email = await attempt.send_and_read(Channel.EMAIL)
    switched, by_sms = await attempt.send_and_read(Channel.SMS)

    assert switched.channel is Channel.SMS
    state = await attempt.current()
    assert state.code is not None and state.code.channel is Channel.SMS
    assert state.code.destination == switched.destination
    if by_email != by_sms:
        assert not (await attempt.verify(by_email)).verified
    assert (await attempt.verify(by_sms)).verified

    sent_rows = [r for r in await audit_rows(harness.pool, inv.invoice_id) if r["event_type"] == "OTP_SENT"]
    assert [r["channel"] for r in sent_rows] == ["email", "sms"]
    assert all("•" in r["destination"] for r in sent_rows)


async def test_code_from_one_attempt_never_verifies_another(harness: Harness) -> None:
    inv = await new_invoice(harness.pool)
    first = await Attempt.open(harness, inv)
    _, code = await first.send_and_read(Channel.SMS)
    await harness.gateway.cancel(inv.invoice_id, first.run_id, _cancel())
    await first.outcome()

    second = await Attempt.open(harness, inv)
    _, other = await second.send_and_read(Channel.SMS)
    if code != other:
        assert not (await second.verify(code)).verified
    assert (await second.verify(other)).verified


async def test_verify_before_any_code_is_refused(harness: Harness) -> None:
    inv = await new_invoice(harness.pool)
    attempt = await Attempt.open(harness, inv)
    with pytest.raises(AttemptRefused) as refused:
        await attempt.verify("123456")
    assert refused.value.type is RefusalType.INVALID_STATE
    assert refused.value.status is PaymentStatus.CHOOSING_CHANNEL
    with pytest.raises(AttemptRefused) as refused:
        await attempt.pay()
    assert refused.value.type is RefusalType.INVALID_STATE


def _cancel() -> CancelInput:
    return CancelInput(reason="changed my mind", client=BROWSER)


def _sent_at(state: AttemptState) -> datetime:
    assert state.code is not None
    return state.code.sent_at


def _about(delta: timedelta, *, seconds: float) -> bool:
    """The configured span less the time one send took: the code's clocks start when it is minted,
    just before the send, and `sent_at` is written after it (up to 5 s on a loaded machine)."""
    return seconds - 5.0 < delta.total_seconds() <= seconds + 0.5


def _hmac_key(harness: Harness) -> bytes:
    return harness.settings.secret("otp_hmac_key").encode()
