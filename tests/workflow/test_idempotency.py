"""Activities retried after their side effect (the answer lost on the way back) never do it twice.

Each flaky activity is a subclass registered under the real activity's name: it runs the real
activity, then fails its first attempt, so Temporal retries work that already happened.
"""

from collections import Counter
from typing import Any

import pytest
from temporalio import activity

from activities.audit import AuditActivities
from activities.otp import OtpActivities
from activities.payments import PaymentActivities
from domain.activity_io import (
    AuditEventInput,
    AuditEventRecord,
    CheckCodeRequest,
    CheckCodeResult,
    ProcessorDebitRequest,
    SendCodeRequest,
    SendCodeResult,
)
from domain.attempt import CancelInput, DeliveryStatusEvent, PaymentReceipt
from domain.audit import verify_chain
from domain.channels import Channel
from domain.status import PaymentStatus
from infra.providers.delivery.base import DeliveryReceipt, OutboundMessage, TransientDeliveryError
from infra.providers.delivery.console import ConsoleSender
from tests.conftest import HarnessFactory
from tests.workflow.steps import BROWSER, Attempt, audit_rows, audit_types, new_invoice, outbox_count
from workers import worker as worker_module
from workflows.pay_invoice import PayInvoiceWorkflow

HAPPY_TRAIL = [
    "ATTEMPT_STARTED",
    "PAYER_RESOLVED",
    "OTP_SENT",
    "OTP_VERIFIED",
    "ACCOUNT_VALIDATED",  # SPEC §9: first debit from this account
    "PAYMENT_SUBMITTED",
    "PAYMENT_ACCEPTED",
]


class AnswerLost(Exception):
    """The side effect happened; the worker never reported it."""


class LosesFirstDebitAnswer(PaymentActivities):
    attempts: Counter[str] = Counter()

    @activity.defn(name="submit_debit")
    async def submit_debit(self, request: ProcessorDebitRequest) -> PaymentReceipt:
        receipt = await super().submit_debit(request)
        self.attempts[request.attempt.run_id] += 1
        if activity.info().attempt == 1:
            raise AnswerLost("debited, then the answer was lost")
        return receipt

    @activity.defn(name="submit_screened_debit")
    async def submit_screened_debit(self, request: ProcessorDebitRequest) -> PaymentReceipt:
        return await self.submit_debit(request)


class LosesFirstAuditAnswer(AuditActivities):
    attempts: Counter[str] = Counter()

    @activity.defn(name="append_audit_event")
    async def append_audit_event(self, event: AuditEventInput) -> AuditEventRecord:
        record = await super().append_audit_event(event)
        self.attempts[event.event_key] += 1
        if activity.info().attempt == 1:
            raise AnswerLost("row written, then the answer was lost")
        return record


class LosesFirstSendAnswer(OtpActivities):
    attempts: Counter[int] = Counter()

    @activity.defn(name="send_code")
    async def send_code(self, request: SendCodeRequest) -> SendCodeResult:
        result = await super().send_code(request)
        self.attempts[request.send_seq] += 1
        if activity.info().attempt == 1:
            raise AnswerLost("code sent, then the answer was lost")
        return result


class LosesFirstCheckAnswer(OtpActivities):
    attempts: Counter[int] = Counter()

    @activity.defn(name="check_code")
    async def check_code(self, request: CheckCodeRequest) -> CheckCodeResult:
        result = await super().check_code(request)
        self.attempts[request.check_seq] += 1
        if activity.info().attempt == 1:
            raise AnswerLost("checked and recorded, then the answer was lost")
        return result


class ProviderAnswerLost:
    """A provider that accepts the message, then times out on the way back (the first time)."""

    def __init__(self, inner: ConsoleSender) -> None:
        self.name = inner.name
        self._inner = inner
        self.calls: Counter[str] = Counter()
        self.texts: list[str] = []

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        receipt = await self._inner.send(message)
        self.calls[message.idempotency_key] += 1
        self.texts.append(message.text)
        if self.calls[message.idempotency_key] == 1:
            raise TransientDeliveryError("read timeout", provider=self.name, provider_code="timeout")
        return receipt

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make `build_worker` use a flaky activity class for the rest of the test."""

    def use(name: str, cls: type) -> type:
        cls.attempts = Counter()  # type: ignore[attr-defined]
        monkeypatch.setattr(worker_module, name, cls)
        return cls

    return use


async def test_retried_debit_is_one_payment_and_one_ledger_entry(
    harness_factory: HarnessFactory, flaky: Any
) -> None:
    payments = flaky("PaymentActivities", LosesFirstDebitAnswer)
    async with harness_factory() as h:
        inv = await new_invoice(h.pool)
        attempt = await Attempt.open(h, inv)
        await attempt.verified(Channel.SMS)
        paid = await attempt.pay()

    assert paid.status is PaymentStatus.PAID
    [(_run_id, tries)] = payments.attempts.items()
    assert tries == 2
    assert await h.pool.fetchval("SELECT count(*) FROM payments WHERE invoice_id = $1", inv.invoice_id) == 1
    key = await h.pool.fetchval("SELECT idempotency_key FROM payments WHERE invoice_id = $1", inv.invoice_id)
    assert await h.pool.fetchval("SELECT count(*) FROM sandbox_debits WHERE idempotency_key = $1", key) == 1
    payment = await h.pool.fetchrow("SELECT * FROM payments WHERE idempotency_key = $1", key)
    assert payment["id"] == paid.payment.payment_id and payment["status"] == "processing"
    assert await audit_types(h.pool, inv.invoice_id) == HAPPY_TRAIL


async def test_retried_audit_append_writes_each_row_once(harness_factory: HarnessFactory, flaky: Any) -> None:
    """The rows with no effect of their own (a delivery report, a cancel) go through the audit
    activity; its answer lost after the row was written, the retry finds the row by its key."""
    audit = flaky("AuditActivities", LosesFirstAuditAnswer)
    async with harness_factory() as h:
        inv = await new_invoice(h.pool)
        attempt = await Attempt.open(h, inv)
        await attempt.request_code(Channel.SMS)
        await attempt.handle.signal(
            PayInvoiceWorkflow.delivery_status,
            DeliveryStatusEvent(send_seq=1, channel=Channel.SMS, status="delivered"),
        )
        await h.gateway.cancel(inv.invoice_id, attempt.run_id, CancelInput(reason="later", client=BROWSER))
        assert (await attempt.outcome()).status is PaymentStatus.CANCELLED

    rows = await audit_rows(h.pool, inv.invoice_id)
    assert [r["event_type"] for r in rows] == [
        "ATTEMPT_STARTED",
        "PAYER_RESOLVED",
        "OTP_SENT",
        "OTP_DELIVERY_STATUS",
        "ATTEMPT_CANCELLED",
    ]
    assert set(audit.attempts.values()) == {2}  # every append was retried after it had written
    assert set(audit.attempts) == {
        r["event_key"] for r in rows if r["event_type"] in ("OTP_DELIVERY_STATUS", "ATTEMPT_CANCELLED")
    }
    assert verify_chain(rows, key=h.settings.audit_key())


async def test_effects_and_their_audit_rows_are_written_together_once(
    harness_factory: HarnessFactory, flaky: Any
) -> None:
    """Paid by email, the code check's answer lost once after it recorded the check and its
    OTP_VERIFIED row: each row is there once, and the payment's authentication record points at the
    real OTP_VERIFIED row."""
    otp = flaky("OtpActivities", LosesFirstCheckAnswer)
    async with harness_factory() as h:
        inv = await new_invoice(h.pool)
        attempt = await Attempt.open(h, inv)
        await attempt.verified(Channel.EMAIL)
        assert (await attempt.pay()).status is PaymentStatus.PAID
    assert otp.attempts == Counter({1: 2}), "the injected retry of the check never happened"
    rows = await audit_rows(h.pool, inv.invoice_id)
    assert [r["event_type"] for r in rows] == HAPPY_TRAIL
    verified_id = next(r["id"] for r in rows if r["event_type"] == "OTP_VERIFIED")
    assert (
        await h.pool.fetchval("SELECT otp_audit_event_id FROM payments WHERE invoice_id = $1", inv.invoice_id)
        == verified_id
    )
    assert verify_chain(rows, key=h.settings.audit_key())


async def test_retried_send_is_one_message_with_a_working_code(
    harness_factory: HarnessFactory, flaky: Any
) -> None:
    otp = flaky("OtpActivities", LosesFirstSendAnswer)
    async with harness_factory() as h:
        inv = await new_invoice(h.pool)
        attempt = await Attempt.open(h, inv)
        _, code = await attempt.send_and_read(Channel.SMS)
        assert otp.attempts == Counter({1: 2})
        assert await outbox_count(h.pool, attempt.run_id) == 1
        assert (await audit_types(h.pool, inv.invoice_id)).count("OTP_SENT") == 1
        assert (await attempt.verify(code)).verified


async def test_provider_accepted_but_answer_lost_is_one_message_with_a_working_code(
    harness_factory: HarnessFactory, db_pool: Any
) -> None:
    sender = ProviderAnswerLost(ConsoleSender(db_pool))
    async with harness_factory(senders={Channel.EMAIL: sender, Channel.SMS: sender}) as h:
        inv = await new_invoice(h.pool)
        attempt = await Attempt.open(h, inv)
        _, code = await attempt.send_and_read(Channel.EMAIL)
        assert list(sender.calls.values()) == [2]
        # The provider may have delivered both messages: they must carry one and the same code.
        assert len(sender.texts) == 2 and all(code in text for text in sender.texts)
        assert await outbox_count(h.pool, attempt.run_id) == 1
        assert (await attempt.verify(code)).verified
        sealed = await h.pool.fetchval(
            "SELECT count(*) FROM otp_challenges WHERE run_id = $1 AND secret_sealed IS NOT NULL",
            attempt.run_id,
        )
        assert sealed == 0, "the code's secret must be erased once the provider accepted it"
