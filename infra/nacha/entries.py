"""The nacha processor's events (SPEC §13): each change of an entry that §9 must hear about becomes a
`ProcessorEvent` stored once in `ach_events` (reconciliation reads them after a cursor) and delivered
like a webhook: stored in `processor_events` with processor `nacha`, then signal-with-start of the
payment's `AchPaymentWorkflow`. Stored in the same transaction as the change; delivered after it."""

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from temporalio.client import Client

from domain.ach_payment import ProcessorEvent
from infra.nacha import calendar
from infra.nacha_config import NachaConfig
from infra.stores.processor_events import deliver_event, mark_delivered, store_event

PROCESSOR_NAME = "nacha"


def event_for(entry: Any, status: str, return_code: str | None) -> ProcessorEvent:
    """One event per entry and status: a re-run publishes the same id, which changes nothing."""
    return ProcessorEvent(
        id=f"nacha:{entry['id']}:{status}",
        type=f"debit.{status}",
        debit_id=entry["id"],
        payment_id=entry["payment_id"],
        status=status,
        return_code=return_code,
        occurred_at=datetime.now(UTC),
    )


async def publish_events(
    conn: asyncpg.Connection, changes: Iterable[tuple[Any, str, str | None]]
) -> list[ProcessorEvent]:
    published: list[ProcessorEvent] = []
    for entry, status, code in changes:
        if entry["kind"] != "debit":
            continue  # a prenote is not a payment: what it causes is published for its debits
        event = event_for(entry, status, code)
        inserted = await conn.fetchval(
            "INSERT INTO ach_events (id, entry_id, payload) VALUES ($1, $2, $3::jsonb)"
            " ON CONFLICT (id) DO NOTHING RETURNING seq",
            event.id,
            entry["id"],
            event.model_dump_json(),
        )
        if inserted is not None:
            published.append(event)
    return published


async def deliver(
    pool: asyncpg.Pool, client: Client | None, task_queue: str, events: Sequence[ProcessorEvent]
) -> int:
    """As the webhook intake does. Without a client (or on failure) reconciliation delivers later."""
    delivered = 0
    for event in events:
        stored = await store_event(pool, PROCESSOR_NAME, event, source="reconciliation")
        if client is None or stored.payment_id is None or stored.delivered:
            continue
        await deliver_event(client, task_queue, stored.payment_id, event)
        await mark_delivered(pool, event.id)
        delivered += 1
    return delivered


async def settle_due_entries(
    pool: asyncpg.Pool, config: NachaConfig, *, only: str | None = None, now: datetime | None = None
) -> list[ProcessorEvent]:
    """Sent debits whose NACHA_SETTLE_AFTER_BANKING_DAYS after the effective date have passed with
    no return are settled (a later unauthorized return still makes them `returned`)."""
    today = calendar.bank_today(now or datetime.now(UTC), config.cutoff_zone)
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "SELECT * FROM ach_entries WHERE kind = 'debit' AND status = 'sent' AND effective_date IS NOT NULL"
            " AND ($1::text IS NULL OR id = $1) FOR UPDATE SKIP LOCKED",
            only,
        )
        due = [
            r
            for r in rows
            if calendar.add_banking_days(r["effective_date"], config.settle_after_banking_days) <= today
        ]
        for row in due:
            await conn.execute(
                "UPDATE ach_entries SET status = 'settled', settled_at = now() WHERE id = $1", row["id"]
            )
        return await publish_events(conn, [(r, "settled", None) for r in due])
