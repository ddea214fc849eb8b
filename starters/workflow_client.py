"""Starting and messaging attempt workflows on behalf of a customer (portal) or a person (CLI).

Join-or-start is update-with-start with `USE_EXISTING`, so a second tab joins the running attempt.
"Already paid" and "locked out" are checked in PostgreSQL first: id-reuse policies only see closed
runs within retention and count a run that ended LOCKED as completed.
"""

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.attempt import (
    WORKFLOW_ID_PREFIX,
    AttemptState,
    CancelInput,
    ClientContext,
    PayInvoiceInput,
    RequestCodeInput,
    RequestCodeResult,
    SubmitPaymentInput,
    SubmitPaymentResult,
    VerifyCodeInput,
    VerifyCodeResult,
    workflow_id_for,
)
from domain.errors import RefusalType
from domain.status import PaymentStatus
from infra.settings import Settings
from workflows import search_attributes as sa
from workflows.pay_invoice import PayInvoiceWorkflow

T = TypeVar("T")
SESSION_SEPARATOR = "~"
# A run that refuses to be joined is mid-way through closing (one audit write at most).
ENDING_RUN_CLOSE_SECONDS = 10.0


class AttemptRefused(Exception):
    """The attempt (or PostgreSQL) refused the action; `type` maps to an HTTP status."""

    def __init__(
        self,
        type: RefusalType,
        message: str,
        *,
        status: PaymentStatus | None = None,
        retry_after: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.type = type
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.details = details or {}


class AttemptNotFound(Exception):
    pass


def session_id_for(invoice_id: str, run_id: str) -> str:
    return f"{invoice_id}{SESSION_SEPARATOR}{run_id}"


def parse_session_id(session_id: str) -> tuple[str, str]:
    invoice_id, sep, run_id = session_id.rpartition(SESSION_SEPARATOR)
    if not sep or not invoice_id or not run_id:
        raise ValueError("malformed session id")
    return invoice_id, run_id


def _refusal_from(err: BaseException) -> AttemptRefused | None:
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, ApplicationError) and cause.type:
            try:
                kind = RefusalType(cause.type)
            except ValueError:
                return None
            details = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
            status = details.get("status")
            return AttemptRefused(
                kind,
                cause.message,
                status=PaymentStatus(status) if status else None,
                retry_after=details.get("retry_after"),
                details=details,
            )
        cause = cause.__cause__
    return None


class AttemptGateway:
    def __init__(
        self, client: Client, pool: asyncpg.Pool, settings: Settings, *, task_queue: str | None = None
    ):
        self.client = client
        self.pool = pool
        self.settings = settings
        self.task_queue = task_queue or settings.temporal_task_queue

    # ---- opening ------------------------------------------------------------------------------

    async def check_can_open(self, invoice_id: str) -> str:
        """Refuse unknown, paid and locked invoices; returns the workflow's static summary."""
        row = await self.pool.fetchrow(
            "SELECT number, status, locked_until, balance_cents, currency FROM invoices WHERE id = $1",
            invoice_id,
        )
        if row is None:
            raise AttemptRefused(RefusalType.INVOICE_NOT_FOUND, f"invoice {invoice_id} does not exist")
        if row["status"] == "paid":
            raise AttemptRefused(
                RefusalType.INVOICE_ALREADY_PAID,
                f"invoice {row['number']} is already paid",
                status=PaymentStatus.PAID,
            )
        if row["status"] == "pending":
            # SPEC §9: a debit is processing; no new attempt starts until it settles or fails.
            raise AttemptRefused(
                RefusalType.INVOICE_ALREADY_PAID,
                f"a payment for invoice {row['number']} is processing",
                status=PaymentStatus.PAID,
            )
        now = datetime.now(UTC)
        if row["locked_until"] is not None and row["locked_until"] > now:
            retry_after = int((row["locked_until"] - now).total_seconds()) + 1
            raise AttemptRefused(
                RefusalType.INVOICE_LOCKED,
                f"invoice {row['number']} is locked after too many wrong codes",
                status=PaymentStatus.LOCKED,
                retry_after=retry_after,
                details={"locked_until": row["locked_until"].isoformat()},
            )
        cents = row["balance_cents"]
        return f"Pay Your Invoice {row['number']}: {cents // 100:,}.{cents % 100:02d} {row['currency']}"

    async def open(self, invoice_id: str, ctx: ClientContext) -> AttemptState:
        """Join the running attempt for this invoice, or start one.

        One update-with-start does both (`USE_EXISTING`), so joining costs no extra round trip.
        PostgreSQL answers "paid" and "locked" first, for running and closed runs alike.
        """
        handle = self.client.get_workflow_handle(workflow_id_for(invoice_id))
        summary = await self.check_can_open(invoice_id)
        try:
            return await self._open_or_start(invoice_id, ctx, summary)
        except AttemptRefused as refused:
            if refused.type is not RefusalType.INVALID_STATE:
                raise
        # We joined an attempt that is ending (cancelled, expired): once it closes, start anew.
        await self._wait_closed(handle)
        summary = await self.check_can_open(invoice_id)
        return await self._open_or_start(invoice_id, ctx, summary)

    async def _open_or_start(self, invoice_id: str, ctx: ClientContext, summary: str) -> AttemptState:
        start = WithStartWorkflowOperation(
            PayInvoiceWorkflow.run,
            PayInvoiceInput(
                invoice_id=invoice_id,
                timers=self.settings.attempt_timers(),
                policy=self.settings.otp_policy,
                opened_by=ctx,
            ),
            id=workflow_id_for(invoice_id),
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.INVOICE_ID, invoice_id),
                    SearchAttributePair(sa.PAYMENT_STATUS, PaymentStatus.RESOLVING_PAYER.value),
                ]
            ),
            static_summary=summary,
        )
        try:
            result: AttemptState = await self.client.execute_update_with_start_workflow(
                PayInvoiceWorkflow.open_session, ctx, start_workflow_operation=start
            )
        except WorkflowUpdateFailedError as err:
            refusal = _refusal_from(err)
            if refusal is not None:
                raise refusal from None
            raise
        return result

    async def _wait_closed(self, handle: WorkflowHandle[Any, Any]) -> None:
        """Wait (bounded) for a run that refused to be joined; how it ended is not our concern."""
        with contextlib.suppress(WorkflowFailureError, TimeoutError):
            async with asyncio.timeout(ENDING_RUN_CLOSE_SECONDS):
                await handle.result(follow_runs=False)

    # ---- messages -----------------------------------------------------------------------------

    def handle(self, invoice_id: str, run_id: str | None = None) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(workflow_id_for(invoice_id), run_id=run_id)

    async def state(self, invoice_id: str, run_id: str | None = None) -> AttemptState:
        try:
            result: AttemptState = await self.handle(invoice_id, run_id).query(PayInvoiceWorkflow.state)
        except RPCError as err:
            if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                raise AttemptNotFound(f"no attempt {run_id or ''} for invoice {invoice_id}") from None
            raise
        return result

    async def request_code(
        self, invoice_id: str, run_id: str | None, input: RequestCodeInput, request_id: str | None = None
    ) -> RequestCodeResult:
        return await self._update(
            self.handle(invoice_id, run_id),
            PayInvoiceWorkflow.request_code,
            input,
            request_id,
            RequestCodeResult,
        )

    async def verify_code(
        self, invoice_id: str, run_id: str | None, input: VerifyCodeInput, request_id: str | None = None
    ) -> VerifyCodeResult:
        return await self._update(
            self.handle(invoice_id, run_id),
            PayInvoiceWorkflow.verify_code,
            input,
            request_id,
            VerifyCodeResult,
        )

    async def submit_payment(
        self, invoice_id: str, run_id: str | None, input: SubmitPaymentInput, request_id: str | None = None
    ) -> SubmitPaymentResult:
        return await self._update(
            self.handle(invoice_id, run_id),
            PayInvoiceWorkflow.submit_payment,
            input,
            request_id,
            SubmitPaymentResult,
        )

    async def cancel(self, invoice_id: str, run_id: str | None, input: CancelInput) -> AttemptState:
        state = await self.state(invoice_id, run_id)
        if state.status.is_terminal:
            raise AttemptRefused(
                RefusalType.INVALID_STATE, f"the attempt is already {state.status.value}", status=state.status
            )
        if state.status is PaymentStatus.SUBMITTING:
            raise AttemptRefused(
                RefusalType.INVALID_STATE, "the payment is being submitted", status=state.status
            )
        await self.handle(invoice_id, run_id).signal(PayInvoiceWorkflow.cancel, input)
        return await self.state(invoice_id, run_id)

    async def _update(
        self,
        handle: WorkflowHandle[Any, Any],
        update: Any,
        arg: Any,
        request_id: str | None,
        result_type: type[T],
    ) -> T:
        try:
            result: T = await handle.execute_update(update, arg, id=request_id, result_type=result_type)
        except WorkflowUpdateFailedError as err:
            refusal = _refusal_from(err)
            if refusal is not None:
                raise refusal from None
            raise
        except RPCError as err:
            if err.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                raise
            # Either no such run (404) or a run that already closed: report the state it ended in.
            state = await self.state(handle.id.removeprefix(WORKFLOW_ID_PREFIX), handle.run_id)
            raise AttemptRefused(
                RefusalType.INVALID_STATE, f"the attempt is {state.status.value}", status=state.status
            ) from None
        return result
