"""Reconciliation (SPEC §9): read the processor's events after the stored cursor, deliver any a
webhook missed, and compare every live payment's status with the processor's.

Idempotent under retry: events are stored once by id, a redelivered event is a duplicate the
workflow ignores, and the cursor only moves after its page is stored.
"""

from datetime import timedelta

import asyncpg
from temporalio import activity

from activities.debit_answers import resolve_orphaned_debits
from activities.settlement import follow_payment
from domain.ach_payment import DeliveredEvent, ReconcileInput, ReconcileReport, StatusMismatch
from infra.providers.processor.client import ProcessorClient, ProcessorRejected
from infra.stores.processor_events import (
    deliver_event,
    mark_delivered,
    resolve_payment,
    store_event,
    undelivered_events,
)

_OURS_LIVE = ("accepted", "processing", "settled")


class ReconciliationActivities:
    def __init__(
        self, pool: asyncpg.Pool, processor: ProcessorClient, *, audit_key: bytes | None = None
    ) -> None:
        self._pool = pool
        self._processor = processor
        self._audit_key = audit_key

    @activity.defn(name="reconcile_processor")
    async def reconcile_processor(self, input: ReconcileInput) -> ReconcileReport:
        info = activity.info()
        client = activity.client()
        name = self._processor.name
        key = self._processor.cursor_key
        start = (
            await self._pool.fetchval("SELECT cursor FROM processor_cursors WHERE processor = $1", key) or "0"
        )
        report = ReconcileReport(
            run_key=f"{info.workflow_id}/{info.workflow_run_id}", cursor_from=start, cursor_to=start
        )
        cursor = start
        while True:
            page = await self._processor.events_after(cursor, limit=200)
            for event in page.events:
                report.events_seen += 1
                await store_event(self._pool, name, event, source="reconciliation")
            await self._pool.execute(
                "INSERT INTO processor_cursors (processor, cursor) VALUES ($1, $2)"
                " ON CONFLICT (processor) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = now()",
                key,
                page.next_cursor,
            )
            cursor = page.next_cursor
            activity.heartbeat(cursor)
            if not page.has_more:
                break
        report.cursor_to = cursor
        if self._audit_key is not None:
            report.orphans_resolved = await resolve_orphaned_debits(
                self._pool, self._processor, client, audit_key=self._audit_key, follow=follow_payment
            )

        touched: set[str] = set()
        for event in await undelivered_events(self._pool, limit=5000):
            payment_id = await resolve_payment(self._pool, event)
            if payment_id is None:
                report.unknown_events.append(event.id)
                continue
            await self._pool.execute(
                "UPDATE processor_events SET payment_id = $2 WHERE id = $1 AND payment_id IS NULL",
                event.id,
                payment_id,
            )
            await deliver_event(client, info.task_queue, payment_id, event)
            await mark_delivered(self._pool, event.id)
            touched.add(payment_id)
            report.delivered.append(DeliveredEvent(event_id=event.id, payment_id=payment_id, type=event.type))

        rows = await self._pool.fetch(
            "SELECT id, status, processor_reference FROM payments WHERE status = ANY($1::text[])"
            " AND processor_reference IS NOT NULL AND created_at > now() - $2::interval ORDER BY created_at",
            list(_OURS_LIVE),
            timedelta(days=input.lookback_days),
        )
        for row in rows:
            if row["id"] in touched:
                continue  # just delivered: the workflow applies it in a moment
            try:
                debit = await self._processor.get_debit(row["processor_reference"])
            except ProcessorRejected:
                report.mismatches.append(
                    StatusMismatch(payment_id=row["id"], ours=row["status"], processor="unknown")
                )
                continue
            report.payments_checked += 1
            ours = "processing" if row["status"] == "accepted" else row["status"]
            if debit.status != ours:
                report.mismatches.append(
                    StatusMismatch(
                        payment_id=row["id"], ours=ours, processor=debit.status, return_code=debit.return_code
                    )
                )
            activity.heartbeat()
        await self._pool.execute(
            "INSERT INTO reconciliation_runs (run_key, report) VALUES ($1, $2::jsonb)"
            " ON CONFLICT (run_key) DO UPDATE SET report = EXCLUDED.report, finished_at = now()",
            report.run_key,
            report.model_dump_json(),
        )
        return report
