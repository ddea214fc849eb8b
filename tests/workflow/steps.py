"""Steps of an attempt as a customer takes them, and what the tests read back (outbox, audit, history).

Every test makes its own invoice with unique contact details, so reading "the latest message to
this address" is exactly what the payer would see on their phone or in their inbox.
"""

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowHistory

from domain.attempt import (
    AttemptOutcome,
    AttemptState,
    ClientContext,
    PayInvoiceInput,
    PaymentDetails,
    RequestCodeInput,
    RequestCodeResult,
    SubmitPaymentInput,
    SubmitPaymentResult,
    VerifyCodeInput,
    VerifyCodeResult,
    workflow_id_for,
)
from domain.channels import Channel
from domain.otp_code import find_code
from domain.policy import PaymentMethod
from domain.status import PaymentStatus
from infra.stores.audit_trail import fetch_trail
from tests.support import GOOD_ACCOUNT, GOOD_ROUTING, Harness, TestInvoice, create_invoice
from workflows.pay_invoice import PayInvoiceWorkflow

BROWSER = ClientContext(ip="203.0.113.7", user_agent="pytest-browser")
T = TypeVar("T")


def unique_email() -> str:
    return f"payer-{secrets.token_hex(5)}@example.com"


def unique_phone() -> str:
    return "+1555" + "".join(secrets.choice("0123456789") for _ in range(7))


async def new_invoice(
    pool: asyncpg.Pool, *, email: bool = True, phone: bool = True, **kwargs: Any
) -> TestInvoice:
    """An invoice whose payer has unique destinations (or none, per channel)."""
    return await create_invoice(
        pool,
        email=unique_email() if email else None,
        phone=unique_phone() if phone else None,
        **kwargs,
    )


def bank_details(account: str = GOOD_ACCOUNT, method: PaymentMethod = PaymentMethod.ECHECK) -> PaymentDetails:
    return PaymentDetails(
        method=method,
        account_holder="Charles Babbage",
        routing_number=GOOD_ROUTING,
        account_number=account,
        account_type="checking",
    )


def destination(inv: TestInvoice, channel: Channel) -> str:
    to = inv.email if channel is Channel.EMAIL else inv.phone
    assert to, f"the payer has no {channel.value}"
    return to


async def code_in_outbox(pool: asyncpg.Pool, to: str, run_id: str) -> str:
    """The code in the newest message this attempt sent to `to`, read as the payer would."""
    rows = await pool.fetch(
        "SELECT body FROM dev_outbox WHERE to_address = $1 AND idempotency_key LIKE $2 ORDER BY id",
        to,
        f"%/{run_id}/code/%",
    )
    assert rows, f"no message for this attempt in the outbox of {to}"
    code = find_code(rows[-1]["body"])
    assert code, "no code in the message"
    return code


async def outbox_count(pool: asyncpg.Pool, run_id: str) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM dev_outbox WHERE idempotency_key LIKE $1", f"%/{run_id}/code/%"
    )
    return count


class Attempt:
    """One customer's session on one invoice, driven through the gateway like the portal does."""

    def __init__(
        self,
        harness: Harness,
        inv: TestInvoice,
        state: AttemptState,
        started: WorkflowHandle[Any, Any] | None = None,
    ) -> None:
        self.h = harness
        self.inv = inv
        self.state = state
        # The time-skipping client skips time only while awaiting a handle it started itself.
        self._started = started

    @classmethod
    async def open(cls, harness: Harness, inv: TestInvoice) -> "Attempt":
        return cls(harness, inv, await harness.gateway.open(inv.invoice_id, BROWSER))

    @classmethod
    async def start(cls, harness: Harness, inv: TestInvoice) -> "Attempt":
        """Start the run directly, as the gateway's update-with-start would, and wait for it to offer
        channels: for the time-skipping server, which has no update-with-start."""
        handle = await harness.client.start_workflow(
            PayInvoiceWorkflow.run,
            PayInvoiceInput(invoice_id=inv.invoice_id, opened_by=BROWSER),
            id=workflow_id_for(inv.invoice_id),
            task_queue=harness.task_queue,
        )
        state = await eventually(
            lambda: handle.query(PayInvoiceWorkflow.state),
            lambda s: s.status is not PaymentStatus.RESOLVING_PAYER,
        )
        return cls(harness, inv, state, handle)

    @property
    def run_id(self) -> str:
        return self.state.run_id

    @property
    def handle(self) -> WorkflowHandle[Any, Any]:
        if self._started is not None:
            return self._started
        return self.h.client.get_workflow_handle_for(
            PayInvoiceWorkflow.run, self.state.workflow_id, run_id=self.run_id
        )

    async def request_code(self, channel: Channel, request_id: str | None = None) -> RequestCodeResult:
        return await self.h.gateway.request_code(
            self.inv.invoice_id, self.run_id, RequestCodeInput(channel=channel, client=BROWSER), request_id
        )

    async def send_and_read(self, channel: Channel) -> tuple[RequestCodeResult, str]:
        sent = await self.request_code(channel)
        return sent, await code_in_outbox(self.h.pool, destination(self.inv, channel), self.run_id)

    async def verify(self, code: str, request_id: str | None = None) -> VerifyCodeResult:
        return await self.h.gateway.verify_code(
            self.inv.invoice_id, self.run_id, VerifyCodeInput(code=code, client=BROWSER), request_id
        )

    async def pay(
        self, details: PaymentDetails | None = None, request_id: str | None = None
    ) -> SubmitPaymentResult:
        return await self.h.gateway.submit_payment(
            self.inv.invoice_id,
            self.run_id,
            SubmitPaymentInput(details=details or bank_details(), client=BROWSER),
            request_id,
        )

    async def verified(self, channel: Channel = Channel.SMS) -> None:
        _, code = await self.send_and_read(channel)
        result = await self.verify(code)
        assert result.verified, result

    async def current(self) -> AttemptState:
        return await self.h.gateway.state(self.inv.invoice_id, self.run_id)

    async def outcome(self) -> AttemptOutcome:
        result: AttemptOutcome = await self.handle.result()
        return result


def wrong_code_for(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def eventually(
    probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool], *, timeout: float = 15.0
) -> T:
    """Poll `probe` until `accept` holds, or fail with the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(0.1)


async def sleep_past(moment: datetime, margin: float = 0.2) -> None:
    """Wait for a wall-clock deadline: nothing observable changes before it, so there is nothing to poll."""
    await asyncio.sleep(max((moment - datetime.now(UTC)).total_seconds(), 0.0) + margin)


async def lockout_passes(pool: asyncpg.Pool, invoice_id: str) -> None:
    """The invoice's lockout window passes, moved in PostgreSQL where the product keeps it instead of
    waited out: the lock's end (`invoices.locked_until`, read by the gateway and by the workflow's
    payer resolution) and the wrong codes that count toward the next lock (`otp_checks`)."""
    moved = await pool.execute(
        "UPDATE invoices SET locked_until = now() WHERE id = $1 AND locked_until > now()", invoice_id
    )
    assert moved == "UPDATE 1", f"{invoice_id} is not locked ({moved})"
    await pool.execute(
        "UPDATE otp_checks SET checked_at = checked_at - interval '1 day' WHERE invoice_id = $1",
        invoice_id,
    )


async def audit_rows(pool: asyncpg.Pool, invoice_id: str) -> list[dict[str, Any]]:
    """The invoice's audit trail, oldest first, `details` decoded."""
    return await fetch_trail(pool, invoice_id)


async def audit_types(pool: asyncpg.Pool, invoice_id: str, run_id: str | None = None) -> list[str]:
    rows = await audit_rows(pool, invoice_id)
    return [r["event_type"] for r in rows if run_id is None or r["run_id"] == run_id]


def accepted_update_ids(history: WorkflowHistory) -> list[str]:
    """Ids of every Update the workflow accepted (only accepted Updates reach history)."""
    ids = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            attrs = event.workflow_execution_update_accepted_event_attributes
            ids.append(attrs.accepted_request.meta.update_id or attrs.protocol_instance_id)
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED:
            ids.append(event.workflow_execution_update_admitted_event_attributes.request.meta.update_id)
    return ids
