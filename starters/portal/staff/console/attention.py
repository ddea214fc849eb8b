"""`/staff/attention`: attempts stuck over 15 minutes, payments that failed, blocked bank accounts,
and invoices lately locked by wrong codes (`attempt.locked`)."""

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from domain.money import format_amount
from infra.resources import ExpectedFailure
from infra.stores import ach_attention
from infra.stores import console_reads as reads
from starters.attempt_reads import StuckAttempt, find_stuck
from starters.portal.deps import Deps
from starters.portal.staff.console.web import Staff, render

router = APIRouter(include_in_schema=False)

STUCK_AFTER = timedelta(minutes=15)
BLOCKED_COLUMNS = (
    "id",
    "account_last4",
    "routing_number",
    "reason",
    "return_code",
    "blocked_at",
    "created_at",
)


@router.get("/staff/attention", response_class=HTMLResponse)
async def attention_page(request: Request, deps: Deps, staff: Staff) -> HTMLResponse:
    stuck: list[StuckAttempt] = []
    note = None
    try:
        stuck = await find_stuck(deps.gateway.client, older_than=STUCK_AFTER, limit=100)
    except ExpectedFailure as exc:
        note = str(exc)
    blocked = await reads.blocked_bank_accounts(deps.pool)
    columns = [c for c in BLOCKED_COLUMNS if blocked and c in blocked[0]]
    return await render(
        request,
        "staff/attention.html",
        {
            "stuck": stuck,
            "stuck_note": note,
            "payments": await reads.payments_needing_attention(deps.pool),
            "blocked": blocked,
            "blocked_columns": columns,
            "locks": await reads.recent_locks(deps.pool),
            "format_amount": format_amount,
            "ach_notices": await ach_attention.open_notices(deps.pool),
            "ach_unknown": await ach_attention.unknown_traces(deps.pool),
            "ach_unsent": await ach_attention.unsent_files(deps.pool),
        },
        staff=staff,
    )
