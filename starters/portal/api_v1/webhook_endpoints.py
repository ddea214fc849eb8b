"""`/api/v1/webhook-endpoints` and `/api/v1/events/{id}/redeliver` (SPEC §12), scope `webhooks:write`.

The signing secret is answered twice in an endpoint's life at most: at creation and at each
rotation; nothing else shows it. The URL passes the SSRF rules before anything is stored.
Every change is audited `WEBHOOK_ENDPOINT_CHANGED` with actor `api_key:<id>`.
"""

import re
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import Client

from domain.api_scopes import WEBHOOKS_WRITE
from domain.webhooks import ALL_EVENTS, ENDPOINT_ID_PATTERN, unknown_event_types
from infra.settings import Settings
from infra.stores import webhooks as store
from infra.webhook_address import Resolver, WebhookUrlRefused, check_webhook_url, system_resolver
from infra.webhook_settings import address_rules, secret_box
from starters.portal.api_v1.auth import ApiKeyPrincipal, api_client_context, require_scope
from starters.portal.api_v1.errors import API_ERROR_RESPONSES, ApiError
from starters.portal.api_v1.paging import DEFAULT_LIMIT, Limit, Page, StartingAfter, page_of
from starters.portal.webhook_actions import RedeliverRefused, audit_endpoint_change, redeliver

Principal = Annotated[ApiKeyPrincipal, Depends(require_scope(WEBHOOKS_WRITE))]
_EVENT_ID = re.compile(r"^evt_[0-9a-z]{24}$")


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=8, max_length=2048, description="https:// (http:// to loopback in dev)")
    events: list[str] = Field(min_length=1, max_length=32, description='Event types, or ["*"] for all')


class EndpointOut(BaseModel):
    id: str
    object: str = "webhook_endpoint"
    url: str
    events: list[str]
    enabled: bool
    disabled_at: str | None = None
    disabled_reason: str | None = None
    created_at: str


class EndpointWithSecret(EndpointOut):
    secret: str = Field(description="whsec_…: shown only in this answer")


class RotatedSecret(BaseModel):
    id: str
    secret: str = Field(description="The new whsec_… secret, shown only here")
    previous_secret_expires_at: str


class DeletedEndpoint(BaseModel):
    id: str
    deleted: bool = True


class DeliveryTry(BaseModel):
    id: str
    object: str = "webhook_delivery"
    endpoint_id: str
    event_id: str
    event_type: str
    attempt: int
    attempted_at: str
    outcome: str
    status_code: int | None
    duration_ms: int
    error: str | None


class RedeliverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoint_id: str | None = Field(
        default=None, description="Only this endpoint (default: every subscribed one)"
    )


class Redelivered(BaseModel):
    event_id: str
    endpoint_ids: list[str]


def _not_found(endpoint_id: str) -> ApiError:
    return ApiError(404, "WebhookEndpointNotFound", f"No webhook endpoint {endpoint_id}.", param="id")


def webhook_endpoints_router(
    settings: Settings,
    pool: asyncpg.Pool,
    client: Client,
    task_queue: str,
    *,
    resolver: Resolver = system_resolver,
) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["webhooks"], responses=API_ERROR_RESPONSES)
    box = secret_box(settings)
    rules = address_rules(settings)
    audit_key = settings.audit_key()

    @router.post("/webhook-endpoints", status_code=201, summary="Create a webhook endpoint")
    async def create(body: EndpointIn, request: Request, principal: Principal) -> EndpointWithSecret:
        unknown = unknown_event_types(body.events)
        if unknown or (ALL_EVENTS in body.events and len(body.events) > 1):
            raise ApiError(
                422,
                "InvalidInput",
                f"Unknown event type {unknown[0]!r}."
                if unknown
                else '"*" stands alone: it means every type.',
                param="events",
            )
        try:
            await check_webhook_url(body.url, rules, resolver)
        except WebhookUrlRefused as refused:
            raise ApiError(422, "WebhookUrlRefused", str(refused), param="url") from None
        events = sorted(set(body.events))
        async with pool.acquire() as conn, conn.transaction():
            endpoint, secret = await store.create_endpoint(
                conn, box, url=body.url, events=events, created_by=principal.actor
            )
            await audit_endpoint_change(
                conn,
                endpoint_id=endpoint.id,
                action="created",
                client=api_client_context(request, principal),
                audit_key=audit_key,
                details={"url": body.url, "events": events},
            )
        return EndpointWithSecret(**endpoint.public(), secret=secret)

    @router.get("/webhook-endpoints", summary="List webhook endpoints, newest first")
    async def list_all(
        _: Principal, limit: Limit = DEFAULT_LIMIT, starting_after: StartingAfter = None
    ) -> Page[EndpointOut]:
        found = await store.list_endpoints(pool, limit=limit + 1, starting_after=starting_after)
        return page_of([EndpointOut(**e.public()) for e in found], limit)

    async def live(endpoint_id: str) -> store.Endpoint:
        endpoint = (
            await store.get_endpoint(pool, endpoint_id) if ENDPOINT_ID_PATTERN.match(endpoint_id) else None
        )
        if endpoint is None or endpoint.deleted_at is not None:
            raise _not_found(endpoint_id)
        return endpoint

    @router.delete("/webhook-endpoints/{endpoint_id}", summary="Delete a webhook endpoint")
    async def delete(endpoint_id: str, request: Request, principal: Principal) -> DeletedEndpoint:
        await live(endpoint_id)
        async with pool.acquire() as conn, conn.transaction():
            if not await store.delete_endpoint(conn, endpoint_id):
                raise _not_found(endpoint_id)
            await audit_endpoint_change(
                conn,
                endpoint_id=endpoint_id,
                action="deleted",
                client=api_client_context(request, principal),
                audit_key=audit_key,
            )
        return DeletedEndpoint(id=endpoint_id)

    @router.post(
        "/webhook-endpoints/{endpoint_id}/rotate-secret",
        summary="A new signing secret; the old one keeps signing beside it for 24 h",
    )
    async def rotate(endpoint_id: str, request: Request, principal: Principal) -> RotatedSecret:
        await live(endpoint_id)
        async with pool.acquire() as conn, conn.transaction():
            secret = await store.rotate_secret(conn, box, endpoint_id)
            if secret is None:
                raise _not_found(endpoint_id)
            expires = await conn.fetchval(
                "SELECT previous_secret_expires_at FROM webhook_endpoints WHERE id = $1", endpoint_id
            )
            await audit_endpoint_change(
                conn,
                endpoint_id=endpoint_id,
                action="secret_rotated",
                client=api_client_context(request, principal),
                audit_key=audit_key,
                details={"previous_secret_expires_at": expires.isoformat()},
            )
        return RotatedSecret(id=endpoint_id, secret=secret, previous_secret_expires_at=expires.isoformat())

    @router.get(
        "/webhook-endpoints/{endpoint_id}/deliveries", summary="Tries to reach this endpoint, newest first"
    )
    async def deliveries(
        endpoint_id: str, _: Principal, limit: Limit = DEFAULT_LIMIT, starting_after: StartingAfter = None
    ) -> Page[DeliveryTry]:
        await live(endpoint_id)
        after: int | None = None
        if starting_after is not None:
            if not starting_after.isdigit() or len(starting_after) > 18:
                raise ApiError(
                    422, "InvalidInput", "starting_after must be a delivery id.", param="starting_after"
                )
            after = int(starting_after)
        rows = await store.recent_tries(pool, endpoint_id=endpoint_id, limit=limit + 1, starting_after=after)
        return page_of([_delivery(r) for r in rows], limit)

    @router.post(
        "/events/{event_id}/redeliver",
        status_code=202,
        summary="Deliver an event again (to one endpoint, or to every subscribed one)",
    )
    async def redeliver_event(
        event_id: str, request: Request, principal: Principal, body: RedeliverIn | None = None
    ) -> Redelivered:
        if not _EVENT_ID.match(event_id):
            raise ApiError(404, "EventNotFound", f"No event {event_id}.", param="event_id")
        try:
            targets = await redeliver(
                pool,
                client,
                task_queue,
                event_id=event_id,
                endpoint_id=body.endpoint_id if body else None,
                actor=api_client_context(request, principal),
                audit_key=audit_key,
            )
        except RedeliverRefused as refused:
            raise ApiError(refused.http_status, refused.error, refused.message, param=refused.param) from None
        return Redelivered(event_id=event_id, endpoint_ids=targets)

    return router


def _delivery(row: dict[str, Any]) -> DeliveryTry:
    return DeliveryTry(
        id=str(row["id"]),
        endpoint_id=row["endpoint_id"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        attempt=row["attempt"],
        attempted_at=row["attempted_at"].isoformat(),
        outcome=row["outcome"],
        status_code=row["status_code"],
        duration_ms=row["duration_ms"],
        error=row["error"],
    )
