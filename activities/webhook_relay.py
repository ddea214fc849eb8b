"""The outbox relay (SPEC §12): undispatched events become delivery workflows, then are marked.

Two callers share `dispatch_pending`: the worker's relay loop (the fast path, about a second after
the event's transaction commits) and the `webhook-relay-sweep` Schedule's activity (the safety net
when no relay loop runs). Starting is idempotent: the workflow id is
`webhook-<endpoint>-<event>`, a running one is joined (`USE_EXISTING`) and a closed one is not run
again (`REJECT_DUPLICATE`), so two relays, or a relay that died between starting and marking,
never deliver an event twice. `dispatched_at` is written only after every start succeeded: a
crash in between means the next pass starts the same ids again, which changes nothing.

An endpoint gets the events written after it was created, never older ones.
"""

import asyncio
import contextlib
import logging
from datetime import timedelta

import asyncpg
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from domain.webhooks import WebhookDeliveryInput, delivery_workflow_id, subscribes
from workflows.webhook_delivery import SWEEP_WEBHOOK_EVENTS, WebhookDeliveryWorkflow

log = logging.getLogger(__name__)
BATCH = 200
# One relay pass at a time across every worker process: the others skip instead of queueing.
_RELAY_LOCK = 7_357_012
_CONCURRENT_STARTS = 16


async def start_delivery(
    client: Client, task_queue: str, endpoint_id: str, event_id: str, *, again: bool = False
) -> None:
    """Starts (or joins) the delivery; `again` (redeliver) may reuse the id of a closed one."""
    # Already closed (delivered or given up): that was the one delivery.
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await client.start_workflow(
            WebhookDeliveryWorkflow.run,
            WebhookDeliveryInput(endpoint_id=endpoint_id, event_id=event_id),
            id=delivery_workflow_id(endpoint_id, event_id),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=(
                WorkflowIDReusePolicy.ALLOW_DUPLICATE if again else WorkflowIDReusePolicy.REJECT_DUPLICATE
            ),
            static_summary=f"webhook {event_id} to {endpoint_id}",
        )


async def dispatch_pending(
    pool: asyncpg.Pool, client: Client, task_queue: str, *, older_than: timedelta = timedelta(0)
) -> int:
    """One pass: start deliveries for up to BATCH undispatched events; returns how many events it
    dispatched (0: none waiting, or another relay is at work)."""
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _RELAY_LOCK):
            return 0
        events = await conn.fetch(
            "SELECT seq, id, type, created_at FROM events WHERE dispatched_at IS NULL"
            " AND created_at <= now() - $1::interval ORDER BY seq LIMIT $2",
            older_than,
            BATCH,
        )
        if not events:
            return 0
        endpoints = await conn.fetch(
            "SELECT id, events, created_at FROM webhook_endpoints"
            " WHERE disabled_at IS NULL AND deleted_at IS NULL AND created_at <= $1",
            max(e["created_at"] for e in events),
        )
        pairs = [
            (endpoint["id"], event["id"])
            for event in events
            for endpoint in endpoints
            if endpoint["created_at"] <= event["created_at"] and subscribes(endpoint["events"], event["type"])
        ]
        gate = asyncio.Semaphore(_CONCURRENT_STARTS)

        async def start(endpoint_id: str, event_id: str) -> None:
            async with gate:
                await start_delivery(client, task_queue, endpoint_id, event_id)

        await asyncio.gather(*(start(endpoint_id, event_id) for endpoint_id, event_id in pairs))
        await conn.execute(
            "UPDATE events SET dispatched_at = now() WHERE seq = ANY($1::bigint[])",
            [e["seq"] for e in events],
        )
        return len(events)


class WebhookRelayActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn(name=SWEEP_WEBHOOK_EVENTS)
    async def sweep_webhook_events(self) -> int:
        """The Schedule's pass: events the relay loop left behind (older than a few seconds)."""
        info = activity.info()
        dispatched = 0
        while True:
            count = await dispatch_pending(
                self._pool, activity.client(), info.task_queue, older_than=timedelta(seconds=5)
            )
            dispatched += count
            activity.heartbeat(dispatched)
            if count == 0:
                return dispatched
