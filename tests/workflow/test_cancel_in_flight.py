"""A cancel arriving while the debit is in flight (SPEC §2, §9): the debit finishes, once, and counts.

The debit is held at the processor's door (the real sandbox service, reached only when the test lets
it through), so the attempt sits in SUBMITTING with its payment row written. Whichever way the cancel
comes — the portal's gateway, a raw `cancel` signal that raced the gateway's check, or a Cancel from
the Temporal UI — the attempt ends PAID with one payment, one debit at the processor and no
ATTEMPT_CANCELLED: money the processor took is never left behind a "cancelled" attempt.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from domain.attempt import CancelInput
from domain.channels import Channel
from domain.errors import RefusalType
from domain.status import PaymentStatus
from starters.workflow_client import AttemptRefused
from tests.conftest import HarnessFactory
from tests.support import Harness
from tests.workflow.steps import BROWSER, Attempt, audit_types, eventually, new_invoice
from workflows.pay_invoice import PayInvoiceWorkflow


class HeldDebits:
    """Wraps the worker's real processor client: each debit waits at the door until released."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def debit(self, **kwargs: Any) -> Any:
        self.calls += 1
        self.entered.set()
        await self.release.wait()
        return await self._inner.debit(**kwargs)


@pytest.fixture
async def held(harness_factory: HarnessFactory) -> AsyncIterator[tuple[Harness, HeldDebits]]:
    holder: list[HeldDebits] = []

    def wrap(deps: Any) -> Any:
        holder.append(HeldDebits(deps.processor))
        deps.processor = holder[0]
        return deps

    async with harness_factory(wrap_deps=wrap) as h:
        try:
            yield h, holder[0]
        finally:
            holder[0].release.set()  # never leave an activity waiting when the test fails


async def _in_flight(h: Harness, gate: HeldDebits) -> tuple[Attempt, "asyncio.Task[Any]"]:
    inv = await new_invoice(h.pool)
    attempt = await Attempt.open(h, inv)
    await attempt.verified(Channel.EMAIL)
    paying = asyncio.create_task(attempt.pay())
    await asyncio.wait_for(gate.entered.wait(), timeout=60)
    state = await attempt.current()
    assert state.status is PaymentStatus.SUBMITTING
    return attempt, paying


async def _paid_once(h: Harness, attempt: Attempt, paying: "asyncio.Task[Any]", gate: HeldDebits) -> None:
    gate.release.set()
    paid = await asyncio.wait_for(paying, timeout=60)
    assert paid.status is PaymentStatus.PAID and paid.payment is not None
    assert (await asyncio.wait_for(attempt.outcome(), timeout=60)).status is PaymentStatus.PAID
    assert gate.calls == 1
    invoice_id = attempt.inv.invoice_id
    rows = await h.pool.fetch(
        "SELECT id, status, idempotency_key FROM payments WHERE invoice_id = $1", invoice_id
    )
    assert [(r["id"], r["status"]) for r in rows] == [(paid.payment.payment_id, "processing")]
    debits = await h.pool.fetchval(
        "SELECT count(*) FROM sandbox_debits WHERE idempotency_key = $1", rows[0]["idempotency_key"]
    )
    assert debits == 1
    trail = await audit_types(h.pool, invoice_id)
    assert "ATTEMPT_CANCELLED" not in trail and trail.count("PAYMENT_SUBMITTED") == 1
    assert await h.pool.fetchval("SELECT status FROM invoices WHERE id = $1", invoice_id) == "pending"


Cancel = Callable[[Harness, Attempt], Any]


async def _gateway(h: Harness, attempt: Attempt) -> None:
    with pytest.raises(AttemptRefused) as refused:
        await h.gateway.cancel(
            attempt.inv.invoice_id, attempt.run_id, CancelInput(reason="changed my mind", client=BROWSER)
        )
    assert refused.value.type is RefusalType.INVALID_STATE


async def _raw_signal(h: Harness, attempt: Attempt) -> None:
    # The gateway's check passed a moment earlier; the signal lands during the debit.
    await attempt.handle.signal(
        PayInvoiceWorkflow.cancel, CancelInput(reason="changed my mind", client=BROWSER)
    )
    # Handled (a workflow task ran) without effect: still SUBMITTING.
    await eventually(attempt.current, lambda s: s.status is PaymentStatus.SUBMITTING)


async def _temporal_cancel(h: Harness, attempt: Attempt) -> None:
    await attempt.handle.cancel()


@pytest.mark.parametrize(
    "cancel", [_gateway, _raw_signal, _temporal_cancel], ids=["gateway", "signal", "temporal"]
)
async def test_a_cancel_during_the_debit_leaves_one_paid_debit(
    held: tuple[Harness, HeldDebits], cancel: Cancel
) -> None:
    h, gate = held
    attempt, paying = await _in_flight(h, gate)
    await cancel(h, attempt)
    await _paid_once(h, attempt, paying, gate)
