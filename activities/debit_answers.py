"""A processor's answer to a debit, recorded on its payment row; an unknown answer looked up, never guessed.

SPEC §9 and §11: the payment row owns the debit's idempotency key. Three ways to not know what
became of a debit sent under it end here, and each is settled by asking the processor for the debit
sent under that key (`find_debit`), never by assuming a decline:

- the processor answers 409 or "key in use" (`ProcessorRejected.is_key_conflict`);
- a row is still `submitting` but the run that wrote it is gone (an operator terminated a stuck
  attempt): the next attempt of the invoice resolves it before writing its own row;
- reconciliation finds such a row (`resolve_orphaned_debits`).

A row the processor never received is closed `declined` (`never_sent`) once no try of its run
can still be in flight (`ORPHANED_AFTER` outlasts the debit activity's start-to-close timeout).
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from domain.activity_io import AttemptRef, AuditEventInput
from domain.attempt import ClientContext
from domain.audit import AuditEventType
from infra.providers.processor.client import Debit, ProcessorClient
from infra.stores.audit_trail import append_event
from infra.stores.events import record_payment_event

# Longer than a debit try can run (DEBIT_TIMEOUT 30 s plus the HTTP timeout): a `submitting` row this
# old whose run is not the caller's has no try left that could still reach the processor.
ORPHANED_AFTER = timedelta(minutes=2)
NEVER_SENT = "never_sent"
SYSTEM = ClientContext(actor="system")

PAYMENT_COLUMNS = (
    "id, idempotency_key, status, routing_number, account_last4, amount_cents, currency, method,"
    " decline_reason, processor_reference, request_digest, invoice_id, customer_id, payer_contact_id,"
    " workflow_id, run_id, submitted_at"
)


@dataclass(frozen=True)
class DebitAnswer:
    """What the processor said of one debit; `status` is the row's new status."""

    status: str  # processing | declined | canceled
    decline_reason: str | None
    reference: str | None
    expected_settlement_at: datetime | None = None

    @property
    def accepted(self) -> bool:
        return self.status == "processing"

    @classmethod
    def of(cls, debit: Debit) -> "DebitAnswer":
        """A debit found at the processor, whatever became of it since: accepted unless declined or
        canceled (settled, failed and returned debits were accepted; the follower applies the rest)."""
        if debit.status == "declined":
            return cls("declined", debit.decline_reason, debit.id)
        if debit.status == "canceled":
            return cls("canceled", "canceled", debit.id)
        return cls("processing", None, debit.id, debit.expected_settlement_at)


def attempt_of(row: asyncpg.Record) -> AttemptRef:
    return AttemptRef(
        workflow_id=row["workflow_id"],
        run_id=row["run_id"],
        invoice_id=row["invoice_id"],
        customer_id=row["customer_id"],
        payer_contact_id=row["payer_contact_id"],
    )


async def record_answer(
    conn: asyncpg.Connection,
    row: asyncpg.Record,
    answer: DebitAnswer,
    *,
    audit_key: bytes,
    client: ClientContext,
) -> bool:
    """In the caller's transaction: the row takes the answer if it is still `submitting`, with the
    invoice held, the status history, the outbox event and the audit row. False: already answered."""
    payment_id = row["id"]
    updated = await conn.execute(
        "UPDATE payments SET status = $2, decline_reason = $3, processor_reference = $4, answered_at = now(),"
        " expected_settlement_at = $5, status_changed_at = now() WHERE id = $1 AND status = 'submitting'",
        payment_id,
        answer.status,
        answer.decline_reason,
        answer.reference,
        answer.expected_settlement_at,
    )
    if not updated.endswith(" 1"):
        return False
    if answer.accepted:
        # SPEC §9: accepted is not settled. The invoice is pending (no new attempt) with the debit's
        # amount held; it becomes paid on settlement, open again on failure or return.
        await conn.execute(
            "UPDATE invoices SET status = 'pending', balance_cents = GREATEST(balance_cents - $2, 0)"
            " WHERE id = $1 AND status = 'open'",
            row["invoice_id"],
            row["amount_cents"],
        )
    if answer.status in ("processing", "canceled"):
        await conn.execute(
            "INSERT INTO payment_status_history (payment_id, status, occurred_at)"
            " VALUES ($1, $2, now()) ON CONFLICT DO NOTHING",
            payment_id,
            answer.status,
        )
        # SPEC §12: payment.processing / payment.canceled, in the transaction that made the change.
        await record_payment_event(conn, payment_id, answer.status)
    details: dict[str, Any] = {"payment_id": payment_id}
    if answer.accepted:
        event = AuditEventType.PAYMENT_ACCEPTED
        details["processor_reference"] = answer.reference
    else:
        event = AuditEventType.PAYMENT_DECLINED
        details["decline_reason"] = answer.decline_reason
    await append_event(
        conn,
        AuditEventInput.for_attempt(
            attempt_of(row),
            event_key=f"{payment_id}/{event.value}",
            event_type=event,
            client=client,
            details=details,
            occurred_at=datetime.now(UTC),
        ),
        key=audit_key,
    )
    return True


async def look_up(processor: ProcessorClient, key: str) -> DebitAnswer | None:
    """The debit sent under `key`, as an answer; None when the processor never received one.
    ProcessorUnavailable propagates: an outcome that cannot be looked up is still unknown."""
    debit = await processor.find_debit(key)
    return DebitAnswer.of(debit) if debit is not None else None


async def resolve_unanswered(
    pool: asyncpg.Pool,
    processor: ProcessorClient,
    row: asyncpg.Record,
    *,
    audit_key: bytes,
    follow: Callable[[str], Awaitable[None]],
) -> DebitAnswer | None:
    """Settle a `submitting` row no live try owns, at the processor, by its key: the answer the row
    now holds; None when it may still be in flight (too young to call never sent)."""
    answer = await look_up(processor, row["idempotency_key"])
    if answer is None:
        if row["submitted_at"] > datetime.now(UTC) - ORPHANED_AFTER:
            return None
        answer = DebitAnswer("declined", NEVER_SENT, None)
    async with pool.acquire() as conn, conn.transaction():
        await record_answer(conn, row, answer, audit_key=audit_key, client=SYSTEM)
    if answer.accepted:
        await follow(row["id"])
    return answer


async def resolve_orphaned_debits(
    pool: asyncpg.Pool,
    processor: ProcessorClient,
    client: Client,
    *,
    audit_key: bytes,
    follow: Callable[[str], Awaitable[None]],
    limit: int = 500,
) -> list[str]:
    """For reconciliation: every `submitting` row older than ORPHANED_AFTER whose run is no longer
    running is resolved at the processor by its key. Returns the payment ids resolved.

    A row whose run still runs is left to that run (it retries with the same key)."""
    rows = await pool.fetch(
        f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE status = 'submitting' AND submitted_at < $1"
        " ORDER BY submitted_at LIMIT $2",
        datetime.now(UTC) - ORPHANED_AFTER,
        limit,
    )
    resolved: list[str] = []
    for row in rows:
        if await _run_is_running(client, row["workflow_id"], row["run_id"]):
            continue
        if await resolve_unanswered(pool, processor, row, audit_key=audit_key, follow=follow) is not None:
            resolved.append(row["id"])
    return resolved


async def _run_is_running(client: Client, workflow_id: str, run_id: str) -> bool:
    try:
        described = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            return False  # past retention, or no such run: nobody owns the row
        raise
    return described.status == WorkflowExecutionStatus.RUNNING
