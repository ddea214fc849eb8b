"""Issue 10 findings 2, 3, 5 and 6, tried as an attacker and as a Temporal reviewer would.

Each test drives the real worker on the real dev server and PostgreSQL; nothing here is mocked
but the failure a test needs (an audit write that fails, a processor answer lost).
"""

import asyncio
import dataclasses
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.audit import AuditActivities
from activities.metrics_port import NoMetrics
from activities.payments import PaymentActivities
from domain.activity_io import AuditEventInput, AuditEventRecord, ProcessorDebitRequest
from domain.attempt import (
    CancelInput,
    DeliveryStatusEvent,
    PayInvoiceInput,
    SubmitPaymentInput,
    workflow_id_for,
)
from domain.channels import Channel
from domain.errors import ErrorType
from domain.status import PaymentStatus
from infra.providers.delivery.base import DeliveryReceipt, OutboundMessage, PermanentDeliveryError
from infra.providers.delivery.console import ConsoleSender
from starters.portal.errors import HTTP_STATUS_FOR
from starters.workflow_client import AttemptRefused, _busy, _is_transient
from tests.conftest import HarnessFactory
from tests.support import Harness
from tests.workflow.steps import (
    BROWSER,
    Attempt,
    audit_types,
    bank_details,
    code_in_outbox,
    eventually,
    new_invoice,
    sleep_past,
)
from workers import worker as worker_module
from workers.worker import WorkerDeps, build_worker
from workflows import search_attributes as sa
from workflows.pay_invoice import PayInvoiceWorkflow

UNDELIVERED = DeliveryStatusEvent(
    send_seq=1, channel=Channel.SMS, status="undelivered", provider_code="30003"
)


async def ledger_rows(h: Harness, invoice_id: str) -> int:
    count: int = await h.pool.fetchval(
        "SELECT count(*) FROM sandbox_debits d JOIN payments p ON p.idempotency_key = d.idempotency_key"
        " WHERE p.invoice_id = $1",
        invoice_id,
    )
    return count


# ---- finding 2: the policy is the worker's ------------------------------------------------------


async def test_a_policy_in_the_workflow_input_is_ignored(harness: Harness) -> None:
    """An insider starts the attempt with an input that exempts every kind: the worker's policy wins."""
    inv = await new_invoice(harness.pool)
    forged = PayInvoiceInput.model_validate(
        {
            "invoice_id": inv.invoice_id,
            "policy": {"required_methods": [], "exempt_kinds": ["invoice", "deposit"]},
            "timers": {"max_failed": 1000, "idle_seconds": 10_000_000},
        }
    )
    handle = await harness.client.start_workflow(
        PayInvoiceWorkflow.run, forged, id=workflow_id_for(inv.invoice_id), task_queue=harness.task_queue
    )
    state = await eventually(
        lambda: handle.query(PayInvoiceWorkflow.state),
        lambda s: s.status is not PaymentStatus.RESOLVING_PAYER,
    )
    assert state.status is PaymentStatus.CHOOSING_CHANNEL and state.otp_required is True
    assert state.attempts_remaining == harness.settings.otp_max_failed
    with pytest.raises(AttemptRefused) as refused:
        await harness.gateway.submit_payment(
            inv.invoice_id, state.run_id, SubmitPaymentInput(details=bank_details(), client=BROWSER)
        )
    assert refused.value.type is ErrorType.INVALID_STATE
    assert (
        await harness.pool.fetchval("SELECT count(*) FROM payments WHERE invoice_id = $1", inv.invoice_id)
        == 0
    )


async def test_larger_transactions_need_a_code_even_as_deposits(harness_factory: HarnessFactory) -> None:
    async with harness_factory(otp_required_above_cents=10_000) as h:
        big = await new_invoice(h.pool, kind="deposit", amount_cents=20_000)
        small = await new_invoice(h.pool, kind="deposit", amount_cents=5_000)
        assert (await Attempt.open(h, big)).state.status is PaymentStatus.CHOOSING_CHANNEL
        assert (await Attempt.open(h, small)).state.status is PaymentStatus.AWAITING_PAYMENT


# ---- finding 3: code pumping ---------------------------------------------------------------------


async def test_cancel_and_reopen_buys_no_codes(harness_factory: HarnessFactory) -> None:
    """`open → request code (sms) → cancel`, twelve times on one link: at most OTP_MAX_SENDS texts,
    and each refusal counted by the worker's metrics under the cap it hit."""
    counted = CountingMetrics()
    async with harness_factory(
        otp_max_sends=3, wrap_deps=lambda d: dataclasses.replace(d, metrics=counted)
    ) as h:
        inv = await new_invoice(h.pool)
        refusals: list[AttemptRefused] = []
        for _ in range(12):
            attempt = await Attempt.open(h, inv)
            try:
                await attempt.request_code(Channel.SMS)
            except AttemptRefused as refused:
                refusals.append(refused)
            await h.gateway.cancel(
                inv.invoice_id, attempt.run_id, CancelInput(reason="pumping", client=BROWSER)
            )
        texts = await h.pool.fetchval("SELECT count(*) FROM dev_outbox WHERE to_address = $1", inv.phone)
        assert texts == 3
        assert len(refusals) == 9
        assert all(r.type is ErrorType.TOO_MANY_SENDS and (r.retry_after or 0) > 0 for r in refusals)
        assert (await audit_types(h.pool, inv.invoice_id)).count("OTP_SEND_REFUSED") == 9
        assert counted.refused == ["invoice"] * 9
        assert counted.sent == ["sms"] * 3


class CountingMetrics(NoMetrics):
    def __init__(self) -> None:
        self.refused: list[str] = []
        self.sent: list[str] = []

    def sends_refused(self, scope: str) -> None:
        self.refused.append(scope)

    def codes_sent(self, channel: str) -> None:
        self.sent.append(channel)


async def test_one_destination_gets_a_bounded_number_of_codes_a_day(harness_factory: HarnessFactory) -> None:
    """Many invoices naming one phone: the phone's daily cap holds across all of them."""
    async with harness_factory(otp_max_sends_per_destination_day=2) as h:
        first = await new_invoice(h.pool)
        phone = first.phone
        invoices = [first] + [await new_invoice(h.pool) for _ in range(2)]
        for inv in invoices[1:]:
            await h.pool.execute("UPDATE contacts SET phone = $2 WHERE id = $1", inv.payer_contact_id, phone)
        outcomes: list[str] = []
        for inv in invoices:
            attempt = await Attempt.open(h, inv)
            try:
                await attempt.request_code(Channel.SMS)
                outcomes.append("sent")
            except AttemptRefused as refused:
                assert refused.type is ErrorType.TOO_MANY_SENDS
                outcomes.append("refused")
        assert outcomes == ["sent", "sent", "refused"]
        assert await h.pool.fetchval("SELECT count(*) FROM dev_outbox WHERE to_address = $1", phone) == 2


async def test_reloading_an_open_attempt_adds_nothing_to_its_history(harness: Harness) -> None:
    inv = await new_invoice(harness.pool)
    attempt = await Attempt.open(harness, inv)
    await attempt.request_code(Channel.SMS)
    before = len((await attempt.handle.fetch_history()).events)
    for _ in range(20):
        again = await harness.gateway.open(inv.invoice_id, BROWSER)
        assert again.run_id == attempt.run_id
    assert len((await attempt.handle.fetch_history()).events) == before


# ---- finding 5: the code the customer has -------------------------------------------------------


class SmsFailsAfterFirst:
    """Delivers the first SMS, then the provider refuses every later one for good."""

    def __init__(self, inner: ConsoleSender) -> None:
        self.name = inner.name
        self._inner = inner
        self.sends = 0

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        self.sends += 1
        if self.sends > 1:
            raise PermanentDeliveryError("carrier refused", provider=self.name, provider_code="21610")
        return await self._inner.send(message)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_a_failed_resend_does_not_void_the_code_already_sent(
    harness_factory: HarnessFactory, db_pool: asyncpg.Pool
) -> None:
    console = ConsoleSender(db_pool)
    senders = {Channel.EMAIL: console, Channel.SMS: SmsFailsAfterFirst(console)}
    async with harness_factory(senders=senders) as h:
        inv = await new_invoice(h.pool)
        attempt = await Attempt.open(h, inv)
        _, code = await attempt.send_and_read(Channel.SMS)
        with pytest.raises(AttemptRefused) as refused:
            await attempt.request_code(Channel.SMS)
        assert refused.value.type is ErrorType.DELIVERY_FAILED
        result = await attempt.verify(code)
        assert result.verified and result.attempts_remaining == h.settings.otp_max_failed


async def test_a_check_with_no_code_outstanding_is_not_a_guess(harness: Harness) -> None:
    inv = await new_invoice(harness.pool)
    attempt = await Attempt.open(harness, inv)
    await attempt.request_code(Channel.SMS)
    await attempt.handle.signal(
        PayInvoiceWorkflow.delivery_status,
        UNDELIVERED,
    )
    await eventually(attempt.current, lambda s: s.code is None)
    for _ in range(harness.settings.otp_max_failed + 1):
        with pytest.raises(AttemptRefused) as refused:
            await attempt.verify("123456")
        assert refused.value.type is ErrorType.INVALID_STATE
    state = await attempt.current()
    assert state.status is PaymentStatus.AWAITING_CODE
    assert state.attempts_remaining == harness.settings.otp_max_failed
    assert (
        await harness.pool.fetchval("SELECT count(*) FROM otp_checks WHERE invoice_id = $1", inv.invoice_id)
        == 0
    )


# ---- finding 6: attempts that stop halfway ------------------------------------------------------


class AuditFailsThreeTimes(AuditActivities):
    """The database refuses every audit write three times before it takes it (an outage)."""

    @activity.defn(name="append_audit_event")
    async def append_audit_event(self, event: AuditEventInput) -> AuditEventRecord:
        if activity.info().attempt <= 3:
            raise ConnectionError("database unavailable")
        return await super().append_audit_event(event)


async def test_an_audit_outage_delays_but_never_stops_an_attempt(
    harness_factory: HarnessFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "AuditActivities", AuditFailsThreeTimes)
    async with harness_factory() as h:
        inv = await new_invoice(h.pool)
        attempt = await Attempt.open(h, inv)
        await attempt.verified(Channel.SMS)
        await attempt.handle.signal(
            PayInvoiceWorkflow.delivery_status,
            UNDELIVERED,
        )
        paid = await attempt.pay()
        assert paid.status is PaymentStatus.PAID
        assert (await attempt.outcome()).status is PaymentStatus.PAID
        trail = await audit_types(h.pool, inv.invoice_id)
        assert {
            "ATTEMPT_STARTED",
            "OTP_SENT",
            "OTP_VERIFIED",
            "PAYMENT_ACCEPTED",
            "OTP_DELIVERY_FAILED",
        } <= set(trail)


async def test_a_temporal_cancel_is_the_audited_cancel(harness: Harness) -> None:
    inv = await new_invoice(harness.pool)
    attempt = await Attempt.open(harness, inv)
    await attempt.request_code(Channel.SMS)
    await attempt.handle.cancel()
    outcome = await attempt.outcome()
    assert outcome.status is PaymentStatus.CANCELLED
    rows = await harness.pool.fetch(
        "SELECT event_type, actor FROM audit_events WHERE invoice_id = $1 ORDER BY id", inv.invoice_id
    )
    assert (rows[-1]["event_type"], rows[-1]["actor"]) == ("ATTEMPT_CANCELLED", "operator")
    description = await attempt.handle.describe()
    assert description.status is WorkflowExecutionStatus.COMPLETED
    assert description.typed_search_attributes.get(sa.PAYMENT_STATUS) == "CANCELLED"


async def _worker_for(h: Harness) -> Any:
    console = ConsoleSender(h.app_pool or h.pool)
    deps = WorkerDeps.from_settings(
        h.settings, h.app_pool or h.pool, {Channel.EMAIL: console, Channel.SMS: console}
    )
    return build_worker(h.client, h.task_queue, deps, graceful_shutdown=timedelta(seconds=5))


async def test_a_cancel_and_a_payment_buffered_together_never_debit(harness_factory: HarnessFactory) -> None:
    """The worker is down while a cancel and a payment arrive; the activation that carries both debits nothing."""
    async with harness_factory() as h:
        inv = await new_invoice(h.pool, kind="deposit", amount_cents=20_000)
        attempt = await Attempt.open(h, inv)
        assert attempt.state.status is PaymentStatus.AWAITING_PAYMENT
    # The harness's worker has stopped: both messages wait in Temporal for the next worker.
    await attempt.handle.signal(
        PayInvoiceWorkflow.cancel, CancelInput(reason="changed my mind", client=BROWSER)
    )
    paying = asyncio.create_task(attempt.pay())
    await asyncio.sleep(0)  # the update request is on its way before the worker comes back
    async with await _worker_for(h):
        outcome = await asyncio.wait_for(attempt.outcome(), timeout=30)
        result = await asyncio.gather(paying, return_exceptions=True)
    assert outcome.status is PaymentStatus.CANCELLED
    assert isinstance(result[0], AttemptRefused), result
    assert await h.pool.fetchval("SELECT count(*) FROM payments WHERE invoice_id = $1", inv.invoice_id) == 0


async def test_a_late_action_after_the_idle_deadline_does_not_revive_the_attempt(
    harness_factory: HarnessFactory,
) -> None:
    async with harness_factory(attempt_idle_seconds=2) as h:
        inv = await new_invoice(h.pool)
        attempt = await Attempt.open(h, inv)
        sent = await attempt.request_code(Channel.SMS)
        code = await code_in_outbox(h.pool, inv.phone or "", attempt.run_id)
        deadline = (await attempt.current()).idle_expires_at
        assert deadline is not None and sent
    # No worker while the deadline passes: the timer and the late code reach the next worker together.
    await sleep_past(deadline)
    verifying = asyncio.create_task(attempt.verify(code))
    await asyncio.sleep(0)
    async with await _worker_for(h):
        outcome = await asyncio.wait_for(attempt.outcome(), timeout=30)
        result = await asyncio.gather(verifying, return_exceptions=True)
    assert outcome.status is PaymentStatus.EXPIRED
    assert isinstance(result[0], AttemptRefused), result
    assert await h.pool.fetchval("SELECT count(*) FROM otp_checks WHERE invoice_id = $1", inv.invoice_id) == 0


class AnswerNeverRecorded(PaymentActivities):
    """The processor answers, then the database refuses to record it, every time (an outage)."""

    async def _record_outcome(self, request: ProcessorDebitRequest, payment_id: str, outcome: Any) -> None:
        raise ConnectionError("database went away after the processor answered")


async def test_a_reset_of_a_submitting_attempt_never_debits_twice(
    harness_factory: HarnessFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The debit is accepted but never recorded; an operator terminates the run and the customer
    pays again: the payment row owns the key, so the processor answers with the same debit."""
    # The same request is known by a digest keyed under BANK_FINGERPRINT_KEY, one setting across
    # deploys; the harness draws a fresh key per worker, so both workers get the same one here.
    key = uuid.uuid4().bytes

    def same_key(deps: Any) -> Any:
        deps.bank_fingerprint_key = key
        return deps

    with monkeypatch.context() as patched:
        patched.setattr(worker_module, "PaymentActivities", AnswerNeverRecorded)
        async with harness_factory(wrap_deps=same_key) as h:
            inv = await new_invoice(h.pool, kind="deposit", amount_cents=20_000)
            attempt = await Attempt.open(h, inv)
            paying = asyncio.create_task(attempt.pay())
            await eventually(lambda: ledger_rows(h, inv.invoice_id), lambda n: n == 1)
            state = await attempt.current()
            assert state.status is PaymentStatus.SUBMITTING
            row = await h.pool.fetchrow(
                "SELECT id, status FROM payments WHERE invoice_id = $1", inv.invoice_id
            )
            assert row["status"] == "submitting"  # committed before the processor was called
            await attempt.handle.terminate("operator: stuck in SUBMITTING")
            await asyncio.gather(paying, return_exceptions=True)
    async with harness_factory(wrap_deps=same_key) as h2:
        again = await Attempt.open(h2, inv)
        paid = await again.pay()
        assert paid.status is PaymentStatus.PAID and paid.payment.payment_id == row["id"]
    assert await ledger_rows(h2, inv.invoice_id) == 1
    assert await h2.pool.fetchval("SELECT count(*) FROM payments WHERE invoice_id = $1", inv.invoice_id) == 1


async def test_a_different_account_never_rides_on_an_open_debit(
    harness_factory: HarnessFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one debit awaits its answer, a new attempt with other bank details is refused, not debited."""
    with monkeypatch.context() as patched:
        patched.setattr(worker_module, "PaymentActivities", AnswerNeverRecorded)
        async with harness_factory() as h:
            inv = await new_invoice(h.pool, kind="deposit", amount_cents=20_000)
            attempt = await Attempt.open(h, inv)
            paying = asyncio.create_task(attempt.pay())
            await eventually(lambda: ledger_rows(h, inv.invoice_id), lambda n: n == 1)
            await attempt.handle.terminate("operator")
            await asyncio.gather(paying, return_exceptions=True)
    async with harness_factory() as h2:
        again = await Attempt.open(h2, inv)
        with pytest.raises(AttemptRefused) as refused:
            await again.pay(bank_details(account="000987654321"))
        assert refused.value.type is ErrorType.DEBIT_IN_FLIGHT
        assert (await again.current()).status is PaymentStatus.AWAITING_PAYMENT
    assert await ledger_rows(h2, inv.invoice_id) == 1


async def test_opening_never_answers_500_when_temporal_sheds_load(harness: Harness) -> None:
    """RESOURCE_EXHAUSTED and a run closing under an update-with-start are a clear 429, not a 500."""
    shed = RPCError("namespace rate limit exceeded", RPCStatusCode.RESOURCE_EXHAUSTED, b"")
    assert _is_transient(shed)
    refusal = _busy(shed)
    assert HTTP_STATUS_FOR[refusal.type] == 429 and refusal.retry_after == 1
    assert not _is_transient(RPCError("bad", RPCStatusCode.INVALID_ARGUMENT, b""))
