"""The real defaults (SPEC §2) on the time-skipping test server: 30 minutes idle, 15 minutes to pay
after verification, codes valid 10 minutes."""

from datetime import datetime, timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle

from domain.attempt import (
    AttemptOutcome,
    AttemptState,
    PayInvoiceInput,
    RequestCodeInput,
    VerifyCodeInput,
    workflow_id_for,
)
from domain.channels import Channel
from domain.policy import AttemptTimers
from domain.status import PaymentStatus
from infra.settings import Settings
from tests.support import TestInvoice as Invoice
from tests.workflow.conftest import SkippingWorker
from tests.workflow.steps import audit_rows, code_in_outbox, eventually, new_invoice
from workflows.pay_invoice import PayInvoiceWorkflow

pytestmark = pytest.mark.timeskipping

SPEC_DEFAULTS = AttemptTimers(
    code_ttl_seconds=600,
    max_failed=5,
    lockout_seconds=1800,
    resend_cooldown_seconds=30,
    max_sends=5,
    idle_seconds=1800,
    payment_window_seconds=900,
)


def test_settings_default_to_the_spec_timers(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        if name.startswith(("otp_", "attempt_", "payment_")):
            monkeypatch.delenv(name.upper(), raising=False)
    assert AttemptTimers() == SPEC_DEFAULTS
    assert Settings(_env_file=None, portalpay_env="dev").attempt_timers() == SPEC_DEFAULTS


async def _start(w: SkippingWorker, inv: Invoice) -> WorkflowHandle[PayInvoiceWorkflow, AttemptOutcome]:
    handle = await w.env.client.start_workflow(
        PayInvoiceWorkflow.run,
        PayInvoiceInput(invoice_id=inv.invoice_id),
        id=workflow_id_for(inv.invoice_id),
        task_queue=w.task_queue,
    )
    await eventually(lambda: _state(handle), lambda s: s.status is PaymentStatus.CHOOSING_CHANNEL)
    return handle


async def _state(handle: WorkflowHandle[PayInvoiceWorkflow, AttemptOutcome]) -> AttemptState:
    return await handle.query(PayInvoiceWorkflow.state)


def _occurred(rows: list[dict[str, Any]], event_type: str) -> datetime:
    moment: datetime = next(r["occurred_at"] for r in rows if r["event_type"] == event_type)
    return moment


async def test_attempt_expires_after_thirty_idle_minutes(skipping_worker: SkippingWorker) -> None:
    w = skipping_worker
    inv = await new_invoice(w.pool)
    handle = await _start(w, inv)
    state = await _state(handle)
    assert state.idle_expires_at is not None

    await w.env.sleep(timedelta(minutes=29))
    assert (await _state(handle)).status is PaymentStatus.CHOOSING_CHANNEL

    outcome = await handle.result()
    assert outcome.status is PaymentStatus.EXPIRED
    rows = await audit_rows(w.pool, inv.invoice_id)
    idle = _occurred(rows, "ATTEMPT_EXPIRED") - _occurred(rows, "ATTEMPT_STARTED")
    assert timedelta(minutes=29, seconds=50) <= idle <= timedelta(minutes=30, seconds=10)


async def test_fifteen_minutes_to_pay_after_verification(skipping_worker: SkippingWorker) -> None:
    w = skipping_worker
    inv = await new_invoice(w.pool)
    handle = await _start(w, inv)

    sent = await handle.execute_update(PayInvoiceWorkflow.request_code, RequestCodeInput(channel=Channel.SMS))
    state = await _state(handle)
    assert state.code is not None
    ttl = sent.code_expires_at - state.code.sent_at
    assert timedelta(minutes=9, seconds=59) <= ttl <= timedelta(minutes=10)

    code = await code_in_outbox(w.pool, inv.phone or "", state.run_id)
    verified = await handle.execute_update(PayInvoiceWorkflow.verify_code, VerifyCodeInput(code=code))
    assert verified.verified
    state = await _state(handle)
    assert state.payment_due_by is not None and state.idle_expires_at is not None
    # The window (15 min) closes well before the idle deadline (30 min) the verification reset.
    gap = state.idle_expires_at - state.payment_due_by
    assert timedelta(minutes=14, seconds=59) <= gap <= timedelta(minutes=15)

    await w.env.sleep(timedelta(minutes=14))
    assert (await _state(handle)).status is PaymentStatus.AWAITING_PAYMENT

    outcome = await handle.result()
    assert outcome.status is PaymentStatus.EXPIRED
    assert outcome.reason and "payment window" in outcome.reason
    rows = await audit_rows(w.pool, inv.invoice_id)
    window = _occurred(rows, "ATTEMPT_EXPIRED") - _occurred(rows, "OTP_VERIFIED")
    assert timedelta(minutes=14, seconds=50) <= window <= timedelta(minutes=15, seconds=10)


async def test_code_expires_after_ten_minutes(skipping_worker: SkippingWorker) -> None:
    w = skipping_worker
    inv = await new_invoice(w.pool)
    handle = await _start(w, inv)
    await handle.execute_update(PayInvoiceWorkflow.request_code, RequestCodeInput(channel=Channel.EMAIL))
    code = await code_in_outbox(w.pool, inv.email or "", (await _state(handle)).run_id)

    await w.env.sleep(timedelta(minutes=10, seconds=1))
    late = await handle.execute_update(PayInvoiceWorkflow.verify_code, VerifyCodeInput(code=code))
    assert (late.verified, late.reason, late.attempts_remaining) == (False, "code_expired", 5)
    assert (await _state(handle)).status is PaymentStatus.AWAITING_CODE
