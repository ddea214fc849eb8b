"""Reconciliation (SPEC §9): read the processor's events after the stored cursor, deliver every
stored event not yet applied, restart the follower of every live payment that has none, and compare
every payment inside its return window with the processor, repairing what it can.

An event counts as handled only once its effect was applied (`processor_events.applied`, set by
the follower's effect); until then each pass delivers it again (the follower ignores an id it has
seen). Events no payment of ours matches are marked `unmatched_at` and skipped, so however many
there are they never hold up the others. Nothing here changes a payment itself: a repair is the
processor's own status delivered to the follower, whose effect asks the processor before acting.
Idempotent under retry: events are stored once by id, and the cursor only moves after its page is stored.
"""

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.debit_answers import resolve_orphaned_debits
from activities.settlement import follow_payment, stored_status
from domain.ach_payment import (
    AchPaymentInput,
    AchStatus,
    DeliveredEvent,
    ProcessorEvent,
    ReconcileInput,
    ReconcileReport,
    RefusedEvent,
    StatusMismatch,
    ach_workflow_id,
    moves_forward,
)
from infra.providers.processor.client import ProcessorClient, ProcessorRejected, ProcessorUnavailable
from infra.stores.processor_events import (
    deliver_event,
    mark_applied,
    mark_delivered,
    match_unresolved_events,
    store_event,
    unapplied_events,
)

_NAMED_UNKNOWN = 50  # unknown events named in the report; the rest are counted
_FOLLOWED = ("accepted", "processing", "settled", "failed", "returned", "canceled")


def _news(current: AchStatus, target: AchStatus | None) -> bool:
    """Would the event still move the payment (a return before its settlement included)?"""
    if target is None:
        return True  # unknown type: the follower records it for staff
    return moves_forward(current, target) or (
        current is AchStatus.PROCESSING and target is AchStatus.RETURNED
    )


class ReconciliationActivities:
    def __init__(
        self,
        pool: asyncpg.Pool,
        processor: ProcessorClient,
        *,
        audit_key: bytes | None = None,
        return_window_days: int = 60,
    ) -> None:
        self._pool = pool
        self._processor = processor
        self._audit_key = audit_key
        self._window = timedelta(days=return_window_days)

    @activity.defn(name="reconcile_processor")
    async def reconcile_processor(self, input: ReconcileInput) -> ReconcileReport:
        info = activity.info()
        client = activity.client()
        key = self._processor.cursor_key
        start = (
            await self._pool.fetchval("SELECT cursor FROM processor_cursors WHERE processor = $1", key) or "0"
        )
        report = ReconcileReport(
            run_key=f"{info.workflow_id}/{info.workflow_run_id}", cursor_from=start, cursor_to=start
        )
        report.cursor_to = await self._read_events(start, report)
        if self._audit_key is not None:
            # `submitting` rows no run owns any more, settled at the processor by their key.
            report.orphans_resolved = await resolve_orphaned_debits(
                self._pool, self._processor, client, audit_key=self._audit_key, follow=follow_payment
            )
        touched = await self._deliver_unapplied(client, info.task_queue, report)
        report.followers_restarted = await self._restart_followers(client, info.task_queue)
        await self._compare(client, info.task_queue, input, touched, report)
        async with self._pool.acquire() as conn, conn.transaction():
            refused = await conn.fetch(
                "SELECT event_id, payment_id, event_type, source, reason FROM refused_processor_events"
                " WHERE reported_in IS NULL ORDER BY refused_at FOR UPDATE"
            )
            report.refused = [
                RefusedEvent(
                    event_id=r["event_id"],
                    payment_id=r["payment_id"],
                    type=r["event_type"],
                    source=r["source"],
                    reason=r["reason"],
                )
                for r in refused
            ]
            await conn.execute(
                "INSERT INTO reconciliation_runs (run_key, report) VALUES ($1, $2::jsonb)"
                " ON CONFLICT (run_key) DO UPDATE SET report = EXCLUDED.report, finished_at = now()",
                report.run_key,
                report.model_dump_json(),
            )
            await conn.execute(
                "UPDATE refused_processor_events SET reported_in = $2 WHERE event_id = ANY($1::text[])",
                [r.event_id for r in report.refused],
                report.run_key,
            )
        return report

    async def _read_events(self, cursor: str, report: ReconcileReport) -> str:
        name = self._processor.name
        key = self._processor.cursor_key
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
                return cursor

    async def _deliver_unapplied(self, client: Client, task_queue: str, report: ReconcileReport) -> set[str]:
        """Every stored event not yet applied whose payment is known, oldest first, in pages."""
        unknown = await match_unresolved_events(self._pool)
        report.unknown_event_count = len(unknown)
        report.unknown_events = unknown[:_NAMED_UNKNOWN]
        touched: set[str] = set()
        after: tuple[datetime, str] | None = None
        while True:
            page = await unapplied_events(self._pool, after=after, limit=500)
            if not page:
                return touched
            for stored in page:
                event, payment_id, current = (
                    stored.event,
                    stored.payment_id,
                    stored_status(stored.payment_status),
                )
                if not _news(current, event.ach_status):
                    # The payment already shows it (or more): nothing to deliver, and it is handled.
                    await mark_applied(self._pool, event.id, "no_change")
                    continue
                await deliver_event(client, task_queue, payment_id, event)
                await mark_delivered(self._pool, event.id)
                touched.add(payment_id)
                report.delivered.append(
                    DeliveredEvent(event_id=event.id, payment_id=payment_id, type=event.type)
                )
            after = (page[-1].received_at, page[-1].event.id)
            activity.heartbeat(len(report.delivered))

    async def _restart_followers(self, client: Client, task_queue: str) -> list[str]:
        """Live payments (processing, or settled inside the return window) whose follower is not running."""
        live = await self._pool.fetch(
            "SELECT p.id FROM payments p WHERE p.processor_reference IS NOT NULL AND ("
            " p.status IN ('accepted', 'processing')"
            " OR (p.status = 'settled' AND EXISTS (SELECT 1 FROM payment_status_history h"
            "     WHERE h.payment_id = p.id AND h.status = 'settled' AND h.occurred_at > now() - $1::interval)))"
            " ORDER BY p.created_at",
            self._window,
        )
        restarted: list[str] = []
        for row in live:
            payment_id = row["id"]
            workflow_id = ach_workflow_id(payment_id)
            # One start per live payment: refused while its follower runs, a new run otherwise.
            # (Visibility would be cheaper but lags: a follower terminated a moment ago still
            # lists as running.)
            with contextlib.suppress(WorkflowAlreadyStartedError):
                await client.start_workflow(
                    "AchPaymentWorkflow",
                    AchPaymentInput(payment_id=payment_id),
                    id=workflow_id,
                    task_queue=task_queue,
                    id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                )
                restarted.append(payment_id)
            if len(restarted) % 100 == 0:
                activity.heartbeat(f"restarted {len(restarted)}")
        return restarted

    async def _compare(
        self,
        client: Client,
        task_queue: str,
        input: ReconcileInput,
        touched: set[str],
        report: ReconcileReport,
    ) -> None:
        """Every payment inside its return window, whatever its status, against the processor."""
        rows = await self._pool.fetch(
            "SELECT id, status, processor_reference FROM payments WHERE status = ANY($1::text[])"
            " AND processor_reference IS NOT NULL AND created_at > now() - $2::interval ORDER BY created_at",
            list(_FOLLOWED),
            timedelta(days=input.lookback_days),
        )
        for row in rows:
            if row["id"] in touched:
                continue  # just delivered: the follower applies it in a moment
            try:
                debit = await self._processor.get_debit(row["processor_reference"])
            except ProcessorRejected:
                report.mismatches.append(
                    StatusMismatch(payment_id=row["id"], ours=row["status"], processor="unknown")
                )
                continue
            except ProcessorUnavailable:
                report.mismatches.append(
                    StatusMismatch(payment_id=row["id"], ours=row["status"], processor="unreachable")
                )
                continue
            report.payments_checked += 1
            ours = stored_status(row["status"])
            if debit.status == ours.value:
                continue
            mismatch = StatusMismatch(
                payment_id=row["id"], ours=ours.value, processor=debit.status, return_code=debit.return_code
            )
            theirs = AchStatus(debit.status) if debit.status in AchStatus._value2member_map_ else None
            if theirs is not None and _news(ours, theirs):
                # The processor is ahead: its own status goes to the follower, which confirms and applies it.
                await deliver_event(
                    client, task_queue, row["id"], _processor_says(row["id"], debit.id, debit)
                )
                report.repaired.append(mismatch)
            else:
                report.mismatches.append(mismatch)  # ours is ahead of or off the processor's: staff look
            if report.payments_checked % 200 == 0:
                activity.heartbeat(report.payments_checked)


def _processor_says(payment_id: str, debit_id: str, debit: Any) -> ProcessorEvent:
    return ProcessorEvent(
        id=f"reconcile:{debit_id}:{debit.status}",
        type=f"debit.{debit.status}",
        debit_id=debit_id,
        payment_id=payment_id,
        status=debit.status,
        return_code=debit.return_code,
        occurred_at=datetime.now(UTC),
    )
