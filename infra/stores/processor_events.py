"""Processor events as PortalPay received them (webhook or reconciliation), each stored once by id,
and their delivery to the payment's `AchPaymentWorkflow` by signal-with-start."""

import json
from dataclasses import dataclass

import asyncpg
from temporalio.client import Client

from domain.ach_payment import AchPaymentInput, ProcessorEvent, ach_workflow_id


@dataclass(frozen=True)
class StoredEvent:
    new: bool  # False: the id was stored before (a duplicate)
    payment_id: str | None  # None: no payment of ours matches (kept for reconciliation)
    delivered: bool  # already delivered to the workflow


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
        row = await conn.fetchrow(
            "SELECT payment_id, delivered_at FROM processor_events WHERE id = $1", event.id
        )
        stored_payment = row["payment_id"] or payment_id
        if row["payment_id"] is None and payment_id is not None:
            # Stored while the payment was unknown; it is known now.
            await conn.execute(
                "UPDATE processor_events SET payment_id = $2 WHERE id = $1", event.id, payment_id
            )
        return StoredEvent(False, stored_payment, row["delivered_at"] is not None)


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


async def undelivered_events(pool: asyncpg.Pool, *, limit: int = 500) -> list[ProcessorEvent]:
    """Stored events not yet delivered whose payment is (now) known, oldest first."""
    rows = await pool.fetch(
        "SELECT payload FROM processor_events WHERE delivered_at IS NULL ORDER BY received_at LIMIT $1", limit
    )
    out = []
    for row in rows:
        payload = row["payload"]
        out.append(
            ProcessorEvent.model_validate(json.loads(payload) if isinstance(payload, str) else payload)
        )
    return out
