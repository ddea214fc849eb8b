"""`/staff/developers` (SPEC §12): the company's API keys (prefix only, never a secret), its webhook
endpoints and their recent deliveries, with `Resend` on a delivery (a redelivery, audited as the
staff member)."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from domain.webhooks import ENDPOINT_ID_PATTERN
from infra.stores import api_keys
from infra.stores import webhooks as store
from infra.stores.staff_sessions import set_flash
from starters.portal.deps import Deps
from starters.portal.staff.console.web import Staff, form_text, redirect, render, require_csrf, staff_context
from starters.portal.webhook_actions import RedeliverRefused, redeliver

router = APIRouter(include_in_schema=False)
RECENT_DELIVERIES = 50


@router.get("/staff/developers", response_class=HTMLResponse)
async def developers_page(request: Request, deps: Deps, staff: Staff) -> HTMLResponse:
    endpoints = await store.list_endpoints(deps.pool, limit=100)
    return await render(
        request,
        "staff/developers.html",
        {
            "api_keys": await api_keys.list_keys(deps.pool),
            "endpoints": endpoints,
            "enabled_ids": {e.id for e in endpoints if e.enabled},
            "deliveries": await store.recent_tries(deps.pool, limit=RECENT_DELIVERIES),
        },
        staff=staff,
    )


@router.post("/staff/developers/resend")
async def resend(request: Request, deps: Deps, staff: Staff) -> Response:
    form = await request.form()
    require_csrf(staff, form)
    event_id = form_text(form, "event_id", limit=40) or ""
    endpoint_id = form_text(form, "endpoint_id", limit=40) or ""
    if not event_id.startswith("evt_") or not ENDPOINT_ID_PATTERN.match(endpoint_id):
        await set_flash(deps.pool, staff, "That delivery could not be found.")
        return redirect("/staff/developers")
    try:
        await redeliver(
            deps.pool,
            deps.gateway.client,
            deps.gateway.task_queue,
            event_id=event_id,
            endpoint_id=endpoint_id,
            actor=staff_context(request, staff),
            audit_key=deps.audit_key,
        )
    except RedeliverRefused as refused:
        await set_flash(deps.pool, staff, refused.message)
    else:
        await set_flash(deps.pool, staff, f"Event {event_id} is being sent again to {endpoint_id}.")
    return redirect("/staff/developers")
