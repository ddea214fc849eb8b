"""Processor events as PortalPay received them (webhook or reconciliation), each stored once by id,
and their delivery to the payment's `AchPaymentWorkflow` by signal-with-start.

An event is handled when `applied` is set, by the follower's effect in its own transaction
(`mark_applied`); `delivered_at` only says it was signalled once."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from temporalio.client import Client

from domain.ach_payment import AchPaymentInput, ProcessorEvent, ach_workflow_id


@dataclass(frozen=True)
class StoredEvent:
    new: bool  # False: the id was stored before (a duplicate)
    payment_id: str | None  # None: no payment of ours matches (kept for reconciliation)
    delivered: bool  # already handled: its effect applied (or refused, or nothing to change)


async def resolve_payment(pool: asyncpg.Pool | asyncpg.Connection, event: ProcessorEvent) -> str | None:
    """Our payment for the event: by the payment id the debit carries, and the debit must match it."""
    if event.payment_id:
        row = await pool.fetchrow(
            "SELECT id, processor_reference FROM payments WHERE id = $1", event.payment_id
        )
        if row is None:
            return None
        if row["processor_reference"] not in (None, event.debit_id):
            return None  # an event naming our payment with someone else's debit: never applied
        return str(row["id"])
    found = await pool.fetchval("SELECT id FROM payments WHERE processor_reference = $1", event.debit_id)
    return str(found) if found is not None else None


async def store_event(
    pool: asyncpg.Pool, processor: str, event: ProcessorEvent, *, source: str
) -> StoredEvent:
    async with pool.acquire() as conn, conn.transaction():
        payment_id = await resolve_payment(conn, event)
        inserted = await conn.fetchval(
            "INSERT INTO processor_events (id, processor, type, debit_id, payment_id, payload, source)"
            " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7) ON CONFLICT (id) DO NOTHING RETURNING id",
            event.id,
            processor,
            event.type,
            event.debit_id,
            payment_id,
            json.dumps(event.model_dump(mode="json")),
            source,
        )
        if inserted is not None:
            return StoredEvent(True, payment_id, False)
        row = await conn.fetchrow("SELECT payment_id, applied FROM processor_events WHERE id = $1", event.id)
        stored_payment = row["payment_id"] or payment_id
        if row["payment_id"] is None and payment_id is not None:
            # Stored while the payment was unknown; it is known now.
            await conn.execute(
                "UPDATE processor_events SET payment_id = $2 WHERE id = $1", event.id, payment_id
            )
        # Signalled before is not enough: until the follower applied it, it is delivered again.
        return StoredEvent(False, stored_payment, row["applied"] is not None)


def base_event_id(event_id: str) -> str:
    """The stored event behind a derived id (`<id>#implied-settlement`)."""
    return event_id.split("#", 1)[0]


async def mark_applied(conn: asyncpg.Pool | asyncpg.Connection, event_id: str, outcome: str) -> None:
    """The event is handled: its effect was applied (`settled`, `returned`, …), it changed nothing
    (`no_change`, `late`) or the processor did not bear it out (`refused`). Called by the effect,
    on the effect's own connection and transaction; the first outcome stands. A derived id (an
    implied settlement) marks its event only when refusing it: the event's own effect is still to come."""
    if "#" in event_id and outcome != "refused":
        return
    await conn.execute(
        "UPDATE processor_events SET applied = $2, applied_at = now() WHERE id = $1 AND applied IS NULL",
        base_event_id(event_id),
        outcome,
    )


async def mark_delivered(pool: asyncpg.Pool, event_id: str) -> None:
    await pool.execute(
        "UPDATE processor_events SET delivered_at = now() WHERE id = $1 AND delivered_at IS NULL", event_id
    )


async def deliver_event(client: Client, task_queue: str, payment_id: str, event: ProcessorEvent) -> None:
    """Signal-with-start: the sender never needs to know whether the payment's workflow runs."""
    await client.start_workflow(
        "AchPaymentWorkflow",
        AchPaymentInput(payment_id=payment_id),
        id=ach_workflow_id(payment_id),
        task_queue=task_queue,
        start_signal="processor_event",
        start_signal_args=[event],
    )


@dataclass(frozen=True)
class UnappliedEvent:
    event: ProcessorEvent
    payment_id: str
    payment_status: str
    received_at: datetime


async def match_unresolved_events(pool: asyncpg.Pool) -> list[str]:
    """Gives each stored, unapplied event without a payment the payment it now matches (by its
    debit, or by the payment id it names while that payment's debit is not yet recorded); marks the
    rest `unmatched_at` and returns their ids, oldest first. Set-based: any number of them is cheap."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE processor_events e SET payment_id = p.id FROM payments p"
            " WHERE e.payment_id IS NULL AND e.applied IS NULL AND e.debit_id IS NOT NULL"
            " AND p.processor_reference = e.debit_id"
        )
        await conn.execute(
            "UPDATE processor_events e SET payment_id = p.id FROM payments p"
            " WHERE e.payment_id IS NULL AND e.applied IS NULL"
            " AND p.id = e.payload->>'payment_id' AND p.processor_reference IS NULL"
        )
        rows = await conn.fetch(
            "UPDATE processor_events SET unmatched_at = COALESCE(unmatched_at, now())"
            " WHERE payment_id IS NULL AND applied IS NULL RETURNING id, received_at"
        )
    return [r["id"] for r in sorted(rows, key=lambda r: (r["received_at"], r["id"]))]


async def unapplied_events(
    pool: asyncpg.Pool, *, after: tuple[datetime, str] | None, limit: int = 500
) -> list[UnappliedEvent]:
    """Stored events of known payments whose effect is not applied yet, oldest first, by pages."""
    since, last_id = after if after is not None else (datetime.min.replace(tzinfo=UTC), "")
    rows = await pool.fetch(
        "SELECT e.payload, e.payment_id, e.received_at, p.status FROM processor_events e"
        " JOIN payments p ON p.id = e.payment_id"
        " WHERE e.applied IS NULL AND e.payment_id IS NOT NULL AND (e.received_at, e.id) > ($1, $2)"
        " ORDER BY e.received_at, e.id LIMIT $3",
        since,
        last_id,
        limit,
    )
    out = []
    for row in rows:
        payload = row["payload"]
        event = ProcessorEvent.model_validate(json.loads(payload) if isinstance(payload, str) else payload)
        out.append(UnappliedEvent(event, str(row["payment_id"]), str(row["status"]), row["received_at"]))
    return out
