"""`/staff/developers` (SPEC §12): the company's API keys (prefix only, never a secret), and —
added by the webhooks half — its webhook endpoints and their recent deliveries."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from infra.stores import api_keys
from starters.portal.deps import Deps
from starters.portal.staff.console.web import Staff, render

router = APIRouter(include_in_schema=False)


@router.get("/staff/developers", response_class=HTMLResponse)
async def developers_page(request: Request, deps: Deps, staff: Staff) -> HTMLResponse:
    keys = await api_keys.list_keys(deps.pool)
    return await render(request, "staff/developers.html", {"api_keys": keys}, staff=staff)
