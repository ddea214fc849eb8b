"""What operators and staff ask of attempts: which sit still too long, and one invoice's whole story.

Shared by the CLI (`ops stuck`, `ops show`) and the staff console (`/staff/attention`, the invoice
page), so it lives below both: neither imports the other.

Lists come from visibility (search attributes are never encrypted, so no codec is needed to
filter); what an attempt waits for comes from its `state` query, which needs a worker and may
fail, so every query here is bounded and optional.
"""

import asyncio
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHistory,
)
from temporalio.converter import decode_typed_search_attributes
from temporalio.service import RPCError, RPCStatusCode

from domain.attempt import AttemptOutcome, AttemptState, workflow_id_for
from domain.audit import verify_chain
from domain.status import PaymentStatus
from infra.resources import ExpectedFailure
from infra.stores.audit_trail import fetch_trail
from workflows import search_attributes as sa
from workflows.pay_invoice import PayInvoiceWorkflow
from workflows.waiting_for import describe_status

WORKFLOW_TYPE = "PayInvoiceWorkflow"
NON_TERMINAL = tuple(s for s in PaymentStatus if not s.is_terminal)
QUERY_TIMEOUT = timedelta(seconds=3)
_DURATION_PART = re.compile(r"(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SAFE_LITERAL = re.compile(r"^[A-Za-z0-9_.:@-]+$")


def parse_duration(text: str) -> timedelta:
    """'90s', '15m', '2h', '1h30m', '1d'; a bare number is seconds."""
    value = text.strip().lower()
    if value.isdigit():
        return timedelta(seconds=int(value))
    if not value or _DURATION_PART.sub("", value):
        raise ValueError(f"cannot read duration {text!r}; use e.g. 90s, 15m, 2h, 1h30m")
    return timedelta(seconds=sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(value)))


def parse_statuses(values: list[str]) -> tuple[PaymentStatus, ...]:
    if not values:
        return NON_TERMINAL
    chosen: list[PaymentStatus] = []
    for raw in values:
        for part in raw.split(","):
            name = part.strip().upper()
            if not name:
                continue
            try:
                status = PaymentStatus(name)
            except ValueError:
                raise ValueError(
                    f"unknown status {part.strip()!r}; one of {', '.join(NON_TERMINAL)}"
                ) from None
            if status.is_terminal:
                raise ValueError(f"{status.value} is terminal; an attempt cannot be stuck in it")
            chosen.append(status)
    return tuple(dict.fromkeys(chosen))


def literal(value: str) -> str:
    """A visibility-query string literal; ids are plain, so anything else is refused, not escaped."""
    if not _SAFE_LITERAL.match(value):
        raise ValueError(f"{value!r} is not a valid id")
    return f"'{value}'"


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def stuck_query(
    statuses: tuple[PaymentStatus, ...], in_status_before: datetime, customer_id: str | None = None
) -> str:
    """One visibility query: running attempts whose status was entered before the threshold.

    Without a customer filter it also finds runs with no `PaymentStatus` at all, started before
    the threshold: the portal sets it at every start, so such a run was started by someone else
    (an insider's plaintext start the worker refuses). It holds the invoice's workflow id, so the
    customer gets "try again" until an operator terminates it."""
    names = ", ".join(literal(s.value) for s in statuses)
    before = _rfc3339(in_status_before)
    ours = f"PaymentStatus IN ({names}) AND StatusSince <= '{before}'"
    if customer_id:
        return (
            f"WorkflowType = '{WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'"
            f" AND {ours} AND CustomerId = {literal(customer_id)}"
        )
    return (
        f"WorkflowType = '{WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'"
        f" AND (({ours}) OR (PaymentStatus IS NULL AND StartTime <= '{before}'))"
    )


FOREIGN_RUN = (
    "not started by PortalPay (no PaymentStatus; its input is not encrypted with our key, so the"
    " worker refuses it): it holds the invoice's attempt id, so the customer is told to try again."
    " Terminate it: temporal workflow terminate --workflow-id <id> --run-id <run>"
)


def status_changes(history: WorkflowHistory) -> list[tuple[datetime, PaymentStatus]]:
    """Each `PaymentStatus` the run entered and when, from its start and search-attribute upserts."""
    changes: list[tuple[datetime, PaymentStatus]] = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            raw = event.workflow_execution_started_event_attributes.search_attributes
        elif event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            raw = event.upsert_workflow_search_attributes_event_attributes.search_attributes
        else:
            continue
        value = decode_typed_search_attributes(raw).get(sa.PAYMENT_STATUS)
        if value is None:
            continue
        status = PaymentStatus(value)
        if not changes or changes[-1][1] is not status:
            changes.append((event.event_time.ToDatetime(tzinfo=UTC), status))
    return changes


async def query_state(client: Client, workflow_id: str, run_id: str | None) -> AttemptState | str:
    """The attempt's `state`, or why it could not be had (no worker polling, closed, ...)."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    try:
        state: AttemptState = await handle.query(PayInvoiceWorkflow.state, rpc_timeout=QUERY_TIMEOUT)
    except RPCError as err:
        if err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            return "no answer (is a worker polling the task queue?)"
        return f"query failed: {err.message.splitlines()[0][:100]}"
    except Exception as err:  # a query must never break an operator's listing
        return f"query failed: {type(err).__name__}"
    return state


@dataclass
class StuckAttempt:
    invoice_id: str
    workflow_id: str
    run_id: str
    status: PaymentStatus
    started_at: datetime
    in_status_since: datetime
    customer_id: str | None
    payer_contact_id: str | None
    amount_cents: int | None
    payer_name: str | None
    waiting_for: str

    def as_json(self, now: datetime) -> dict[str, Any]:
        return {
            "invoice_id": self.invoice_id,
            "workflow_id": self.workflow_id,
            "run_id": self.run_id,
            "status": self.status.value,
            "started_at": self.started_at.isoformat(),
            "age_seconds": int((now - self.started_at).total_seconds()),
            "in_status_since": self.in_status_since.isoformat(),
            "in_status_seconds": int((now - self.in_status_since).total_seconds()),
            "customer_id": self.customer_id,
            "payer_contact_id": self.payer_contact_id,
            "payer_name": self.payer_name,
            "amount_cents": self.amount_cents,
            "waiting_for": self.waiting_for,
        }


async def find_stuck(
    client: Client,
    *,
    older_than: timedelta,
    statuses: tuple[PaymentStatus, ...] = NON_TERMINAL,
    customer_id: str | None = None,
    limit: int = 200,
    now: datetime | None = None,
) -> list[StuckAttempt]:
    """Running attempts whose current status was entered more than `older_than` ago, oldest first.

    Which attempts, and since when, come from one visibility query on `StatusSince` (upserted with
    `PaymentStatus`), never from their histories. What each waits for, in words, comes from its
    `state` query: bounded, concurrent, and optional (a listing never fails for want of a worker).
    """
    now = now or datetime.now(UTC)
    query = stuck_query(statuses, now - older_than, customer_id)
    try:
        executions = [wf async for wf in client.list_workflows(query, limit=limit)]
    except RPCError as err:
        raise ExpectedFailure(f"visibility query failed: {err.message.splitlines()[0][:160]}") from None
    gate = asyncio.Semaphore(8)

    async def described(wf: WorkflowExecution) -> StuckAttempt:
        if wf.typed_search_attributes.get(sa.PAYMENT_STATUS) is None:
            return _stuck(wf, "no state: not our run")  # the worker cannot answer its query
        async with gate:
            return _stuck(wf, await query_state(client, wf.id, wf.run_id))

    found = await asyncio.gather(*(described(wf) for wf in executions))
    return sorted(found, key=lambda a: a.in_status_since)


def _stuck(wf: WorkflowExecution, state: AttemptState | str) -> StuckAttempt:
    attrs = wf.typed_search_attributes
    foreign = attrs.get(sa.PAYMENT_STATUS) is None
    status = PaymentStatus(attrs.get(sa.PAYMENT_STATUS) or PaymentStatus.RESOLVING_PAYER.value)
    return StuckAttempt(
        invoice_id=attrs.get(sa.INVOICE_ID) or wf.id.removeprefix("pay-invoice-"),
        workflow_id=wf.id,
        run_id=wf.run_id,
        status=status,
        started_at=wf.start_time,
        in_status_since=attrs.get(sa.STATUS_SINCE) or wf.start_time,
        customer_id=attrs.get(sa.CUSTOMER_ID),
        payer_contact_id=attrs.get(sa.PAYER_CONTACT_ID),
        amount_cents=attrs.get(sa.AMOUNT_CENTS),
        payer_name=state.payer_name if isinstance(state, AttemptState) else None,
        waiting_for=FOREIGN_RUN
        if foreign
        else state.waiting_for
        if isinstance(state, AttemptState)
        else f"{describe_status(status)} ({state})",
    )


@dataclass
class RunSummary:
    run_id: str
    execution_status: str
    payment_status: str | None
    started_at: datetime
    closed_at: datetime | None


@dataclass
class AttemptReport:
    """`ops show`: the latest run's state and states, every run, and the invoice's audit trail."""

    invoice_id: str
    workflow_id: str
    run_id: str | None = None
    execution_status: str | None = None
    state: AttemptState | None = None
    outcome: AttemptOutcome | None = None
    note: str | None = None  # why the state is partial (query failed, run failed, ...)
    search_attributes: dict[str, Any] = field(default_factory=dict)
    status_changes: list[tuple[datetime, PaymentStatus]] = field(default_factory=list)
    runs: list[RunSummary] = field(default_factory=list)
    trail: list[dict[str, Any]] = field(default_factory=list)
    chain_ok: bool = True


async def load_attempt_report(
    client: Client, pool: asyncpg.Pool, invoice_id: str, *, audit_key: bytes
) -> AttemptReport:
    try:
        literal(invoice_id)
    except ValueError as exc:
        raise ExpectedFailure(str(exc)) from None
    report = AttemptReport(invoice_id=invoice_id, workflow_id=workflow_id_for(invoice_id))
    report.trail = await fetch_trail(pool, invoice_id)
    report.chain_ok = verify_chain(report.trail, key=audit_key)
    handle = client.get_workflow_handle(report.workflow_id)
    try:
        desc = await handle.describe()
    except RPCError as err:
        if err.status is not RPCStatusCode.NOT_FOUND:
            raise
        if not report.trail:
            raise ExpectedFailure(f"no attempt and no audit trail for invoice {invoice_id}") from None
        report.note = "no run in Temporal (never started, or past retention)"
        return report
    report.run_id = desc.run_id
    report.execution_status = desc.status.name if desc.status else None
    report.search_attributes = {key.name: desc.typed_search_attributes.get(key) for key in sa.ALL_KEYS}
    report.status_changes = status_changes(await handle.fetch_history())
    report.runs = await _runs(client, report.workflow_id)
    if desc.status is WorkflowExecutionStatus.RUNNING:
        state = await query_state(client, report.workflow_id, desc.run_id)
        if isinstance(state, AttemptState):
            report.state = state
        else:
            report.note = state
    elif desc.status is WorkflowExecutionStatus.COMPLETED:
        typed = client.get_workflow_handle_for(PayInvoiceWorkflow.run, report.workflow_id, run_id=desc.run_id)
        report.outcome = await typed.result(follow_runs=False)
    elif desc.status is WorkflowExecutionStatus.FAILED:
        try:
            await handle.result(follow_runs=False)
        except WorkflowFailureError as err:
            cause = err.cause
            report.note = f"the run failed: {getattr(cause, 'message', None) or cause}"
    else:
        report.note = f"the run ended {report.execution_status}"
    return report


async def _runs(client: Client, workflow_id: str) -> list[RunSummary]:
    runs = [
        RunSummary(
            run_id=wf.run_id,
            execution_status=wf.status.name if wf.status else "?",
            payment_status=wf.typed_search_attributes.get(sa.PAYMENT_STATUS),
            started_at=wf.start_time,
            closed_at=wf.close_time,
        )
        async for wf in client.list_workflows(f"WorkflowId = {literal(workflow_id)}", limit=50)
    ]
    return sorted(runs, key=lambda r: r.started_at)
