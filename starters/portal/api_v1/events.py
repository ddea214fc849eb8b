"""`GET /api/v1/events` (SPEC §12): the outbox, oldest first, paged by `starting_after=evt_…`,
filtered by `type`. Rows are never deleted here, so they are kept well past the 30 days promised."""

import json
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Path, Query, Request

from domain.api_scopes import EVENTS_READ
from domain.events import EventType
from starters.portal.api_v1.auth import ApiKeyPrincipal, require_scope
from starters.portal.api_v1.errors import API_ERROR_RESPONSES, ApiError
from starters.portal.api_v1.paging import DEFAULT_LIMIT, Limit, Page, StartingAfter, page_of
from starters.staff_changes.actions import staff_services

router = APIRouter(prefix="/api/v1", tags=["api v1"], responses=API_ERROR_RESPONSES)
EventsReader = Annotated[ApiKeyPrincipal, Depends(require_scope(EVENTS_READ))]


def event_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "type": row["type"],
        "created_at": row["created_at"].isoformat(),
        "data": json.loads(row["data"]),
    }


@router.get("/events", summary="Events, oldest first, paged")
async def list_events(
    request: Request,
    _: EventsReader,
    type: Annotated[EventType | None, Query(description="Only events of this type")] = None,
    limit: Limit = DEFAULT_LIMIT,
    starting_after: StartingAfter = None,
) -> Page[dict[str, Any]]:
    pool = staff_services(request).pool
    after_seq = None
    if starting_after is not None:
        after_seq = await pool.fetchval("SELECT seq FROM events WHERE id = $1", starting_after)
        if after_seq is None:
            raise ApiError(422, "InvalidInput", "starting_after names no event.", param="starting_after")
    rows = await pool.fetch(
        "SELECT id, type, created_at, data FROM events"
        " WHERE ($1::text IS NULL OR type = $1) AND ($2::bigint IS NULL OR seq > $2) ORDER BY seq LIMIT $3",
        str(type) if type else None,
        after_seq,
        limit + 1,
    )
    return page_of([event_view(r) for r in rows], limit)


@router.get("/events/{event_id}", summary="One event")
async def get_event(
    event_id: Annotated[str, Path(pattern=r"^evt_[0-9a-z]{24}$")], request: Request, _: EventsReader
) -> dict[str, Any]:
    row = await staff_services(request).pool.fetchrow(
        "SELECT id, type, created_at, data FROM events WHERE id = $1", event_id
    )
    if row is None:
        raise ApiError(404, "EventNotFound", f"There is no event {event_id}.")
    return event_view(row)
