"""What the API and the staff console both do to webhooks (SPEC §12): audit an endpoint change and
redeliver an event. One place, so a `Resend` in the console is exactly a `redeliver` by API."""

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from temporalio.client import Client

from activities.webhook_relay import start_delivery
from domain.activity_io import AuditEventInput
from domain.attempt import ClientContext
from domain.audit import AuditEventType
from domain.webhooks import subscribes
from infra.stores import webhooks as store
from infra.stores.audit_trail import append_event


class RedeliverRefused(Exception):
    """A redelivery that cannot be made; `error` is the envelope's error name."""

    def __init__(self, http_status: int, error: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.error = error
        self.message = message
        self.param = param


async def audit_endpoint_change(
    conn: asyncpg.Connection,
    *,
    endpoint_id: str,
    action: str,
    client: ClientContext,
    audit_key: bytes,
    details: dict[str, Any] | None = None,
) -> None:
    """`WEBHOOK_ENDPOINT_CHANGED`, actor `api_key:<id>` or the staff member; never a secret."""
    await append_event(
        conn,
        AuditEventInput(
            event_key=f"webhook-endpoint/{endpoint_id}/{action}/{uuid.uuid4().hex}",
            event_type=AuditEventType.WEBHOOK_ENDPOINT_CHANGED,
            invoice_id=None,
            customer_id=None,
            payer_contact_id=None,
            client=client,
            details={"endpoint_id": endpoint_id, "action": action, **(details or {})},
            occurred_at=datetime.now(UTC),
        ),
        key=audit_key,
    )


async def redeliver(
    pool: asyncpg.Pool,
    client: Client,
    task_queue: str,
    *,
    event_id: str,
    endpoint_id: str | None,
    actor: ClientContext,
    audit_key: bytes,
) -> list[str]:
    """Starts the event's delivery again to one endpoint, or to every enabled endpoint subscribed
    to its type; a delivery still running is joined, not doubled. Returns the endpoint ids."""
    event = await store.load_event(pool, event_id)
    if event is None:
        raise RedeliverRefused(404, "EventNotFound", f"No event {event_id}.")
    if endpoint_id is not None:
        endpoint = await store.get_endpoint(pool, endpoint_id)
        if endpoint is None or endpoint.deleted_at is not None:
            raise RedeliverRefused(
                404, "WebhookEndpointNotFound", f"No webhook endpoint {endpoint_id}.", "endpoint_id"
            )
        if not endpoint.enabled:
            raise RedeliverRefused(
                409, "WebhookEndpointDisabled", f"Webhook endpoint {endpoint_id} is disabled.", "endpoint_id"
            )
        targets = [endpoint.id]
    else:
        targets = [
            e.id
            for e in await store.list_endpoints(pool, limit=1000)
            if e.enabled and subscribes(e.events, event["type"])
        ]
    for target in targets:
        await start_delivery(client, task_queue, target, event_id, again=True)
    async with pool.acquire() as conn:
        for target in targets:
            await audit_endpoint_change(
                conn,
                endpoint_id=target,
                action="redeliver",
                client=actor,
                audit_key=audit_key,
                details={"event_id": event_id},
            )
    return targets
