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
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    QueryRejectCondition as TemporalQueryRejectCondition,
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
from domain.invoice_standing import opening_refusal
from domain.money import format_amount_with_code
from domain.status import PaymentStatus
from infra.settings import Settings
from infra.stores.invoices import fetch_standing
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


# How a refusal reads over HTTP: the portal answers with these, the CLI prints the message.
HTTP_STATUS_FOR: dict[str, int] = {
    RefusalType.INVALID_STATE: 409,
    RefusalType.INVALID_INPUT: 422,
    RefusalType.CHANNEL_UNAVAILABLE: 422,
    RefusalType.RESEND_TOO_SOON: 429,
    RefusalType.TOO_MANY_SENDS: 429,
    RefusalType.DELIVERY_FAILED: 502,
    RefusalType.INVOICE_NOT_FOUND: 404,
    RefusalType.INVOICE_ALREADY_PAID: 409,
    RefusalType.INVOICE_LOCKED: 429,
    RefusalType.INVOICE_VOID: 410,
    RefusalType.CONTACT_CHANGED: 409,
    RefusalType.DEBIT_IN_FLIGHT: 409,
    RefusalType.ATTEMPT_BUSY: 429,
    RefusalType.BANK_ACCOUNT_BLOCKED: 422,
    RefusalType.ACCOUNT_VALIDATION_FAILED: 422,
}
_REFUSAL_STATUS_NAME = {
    RefusalType.INVOICE_ALREADY_PAID: PaymentStatus.PAID,
    RefusalType.INVOICE_LOCKED: PaymentStatus.LOCKED,
}
# Temporal answers these when it sheds load, an execution hit its update limits, or a run closed
# while an update-with-start was in flight: a clear "try again" to the customer, never a 500.
_TRANSIENT_RPC = frozenset(
    {
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.ABORTED,
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.FAILED_PRECONDITION,
    }
)


def _is_transient(err: BaseException) -> bool:
    if isinstance(err, WorkflowUpdateRPCTimeoutOrCancelledError):
        return True
    return isinstance(err, RPCError) and err.status in _TRANSIENT_RPC


def _busy(err: BaseException) -> AttemptRefused:
    return AttemptRefused(
        RefusalType.ATTEMPT_BUSY, "the payment service is busy; try again in a moment", retry_after=1
    )


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
        """Refuse unknown, paid and locked invoices (the one rule); returns the run's static summary."""
        standing = await fetch_standing(self.pool, invoice_id)
        refusal = opening_refusal(standing, invoice_id, datetime.now(UTC))
        if refusal is not None:
            raise AttemptRefused(
                refusal.type,
                refusal.message,
                status=_REFUSAL_STATUS_NAME.get(refusal.type),
                retry_after=refusal.retry_after,
                details={"locked_until": refusal.locked_until.isoformat()} if refusal.locked_until else None,
            )
        assert standing is not None
        amount = format_amount_with_code(standing.balance_cents, standing.currency)
        return f"Pay Your Invoice {standing.number}: {amount}"

    async def open(self, invoice_id: str, ctx: ClientContext) -> AttemptState:
        """Join the running attempt for this invoice, or start one.

        A running attempt past resolution answers from a query, which adds nothing to its history
        (a reload must not spend the run's update budget). Otherwise one update-with-start
        (`USE_EXISTING`) joins or starts. PostgreSQL answers "paid" and "locked" first.
        """
        summary = await self.check_can_open(invoice_id)
        joined = await self._running_state(invoice_id)
        if joined is not None:
            return joined
        try:
            return await self._open_or_start(invoice_id, ctx, summary)
        except AttemptRefused as refused:
            if refused.type is not RefusalType.INVALID_STATE:
                raise
        # We joined an attempt that is ending (cancelled, expired): once it closes, start anew.
        await self._wait_closed(self.client.get_workflow_handle(workflow_id_for(invoice_id)))
        summary = await self.check_can_open(invoice_id)
        return await self._open_or_start(invoice_id, ctx, summary)

    async def _running_state(self, invoice_id: str) -> AttemptState | None:
        """The state of a running attempt that a new tab can join as it is, else None."""
        handle = self.client.get_workflow_handle(workflow_id_for(invoice_id))
        try:
            state: AttemptState = await handle.query(
                PayInvoiceWorkflow.state, reject_condition=TemporalQueryRejectCondition.NOT_OPEN
            )
        except (RPCError, WorkflowQueryRejectedError, WorkflowQueryFailedError):
            return None
        if state.status is PaymentStatus.RESOLVING_PAYER or state.status.is_terminal:
            return None
        return state

    async def _open_or_start(self, invoice_id: str, ctx: ClientContext, summary: str) -> AttemptState:
        """One update-with-start; an aborted one (the run closing under it) is tried once more."""
        for last_try in (False, True):
            try:
                return await self._update_with_start(invoice_id, ctx, summary)
            except WorkflowUpdateFailedError as err:
                refusal = _refusal_from(err)
                if refusal is not None:
                    raise refusal from None
                raise
            except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
                if last_try or not _is_transient(err):
                    raise _busy(err) from None
        raise AssertionError("unreachable")

    async def _update_with_start(self, invoice_id: str, ctx: ClientContext, summary: str) -> AttemptState:
        start = WithStartWorkflowOperation(
            PayInvoiceWorkflow.run,
            PayInvoiceInput(invoice_id=invoice_id, opened_by=ctx),
            id=workflow_id_for(invoice_id),
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.INVOICE_ID, invoice_id),
                    SearchAttributePair(sa.PAYMENT_STATUS, PaymentStatus.RESOLVING_PAYER.value),
                    SearchAttributePair(sa.STATUS_SINCE, datetime.now(UTC)),
                ]
            ),
            static_summary=summary,
        )
        result: AttemptState = await self.client.execute_update_with_start_workflow(
            PayInvoiceWorkflow.open_session, ctx, start_workflow_operation=start
        )
        return result

    async def _wait_closed(self, handle: WorkflowHandle[Any, Any]) -> None:
        """Wait (bounded) for a run that refused to be joined; how it ended is not our concern."""
        with contextlib.suppress(WorkflowFailureError, TimeoutError, RPCError):
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
        """Signal the cancel, then wait for the run to end (its audited cancel) rather than poll."""
        state = await self.state(invoice_id, run_id)
        if state.status.is_terminal:
            raise AttemptRefused(
                RefusalType.INVALID_STATE, f"the attempt is already {state.status.value}", status=state.status
            )
        if state.status is PaymentStatus.SUBMITTING:
            raise AttemptRefused(
                RefusalType.INVALID_STATE, "the payment is being submitted", status=state.status
            )
        handle = self.handle(invoice_id, state.run_id)
        await handle.signal(PayInvoiceWorkflow.cancel, input)
        with contextlib.suppress(WorkflowFailureError, TimeoutError):
            async with asyncio.timeout(ENDING_RUN_CLOSE_SECONDS):
                await handle.result(follow_runs=False)
        return await self.state(invoice_id, state.run_id)

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
