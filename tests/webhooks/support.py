"""Waiting on deliveries: the workflows' results and the recorded tries, never the wall clock."""

from typing import Any

import asyncpg
from temporalio.client import Client

from domain.webhooks import WebhookDeliveryOutcome, delivery_workflow_id
from tests.lifecycle.services import wait_for


async def delivery_outcome(
    client: Client, endpoint_id: str, event_id: str, *, timeout: float = 60.0
) -> WebhookDeliveryOutcome:
    """Waits for the delivery workflow to be started by the relay, then for its result."""
    workflow_id = delivery_workflow_id(endpoint_id, event_id)

    async def started() -> bool:
        try:
            await client.get_workflow_handle(workflow_id).describe()
        except Exception:
            return False
        return True

    await wait_for(started, bool, timeout=timeout, what=f"{workflow_id} to start")
    handle = client.get_workflow_handle(workflow_id, result_type=WebhookDeliveryOutcome)
    outcome: WebhookDeliveryOutcome = await handle.result()
    return outcome


async def tries(pool: asyncpg.Pool, endpoint_id: str, event_id: str | None = None) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT event_id, attempt, outcome, status_code, duration_ms, error FROM webhook_deliveries"
        " WHERE endpoint_id = $1 AND ($2::text IS NULL OR event_id = $2) ORDER BY id",
        endpoint_id,
        event_id,
    )
    return [dict(r) for r in rows]
