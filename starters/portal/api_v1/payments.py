"""Payments on /api/v1 (SPEC §12): status, return code and meaning, amount, last 4, times; never a
full account number (only the last 4 are ever stored)."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.encoders import jsonable_encoder

from domain.api_scopes import PAYMENTS_READ
from domain.company_records import EXTERNAL_ID_PATTERN
from infra.stores.events import payment_event_object
from starters.portal.api_v1.auth import ApiKeyPrincipal, require_scope
from starters.portal.api_v1.errors import API_ERROR_RESPONSES, ApiError
from starters.portal.api_v1.paging import DEFAULT_LIMIT, Limit, Page, StartingAfter, keyset_after, page_of
from starters.staff_changes.actions import staff_services

router = APIRouter(prefix="/api/v1", tags=["api v1"], responses=API_ERROR_RESPONSES)
PaymentsReader = Annotated[ApiKeyPrincipal, Depends(require_scope(PAYMENTS_READ))]
# A debit not yet sent (`submitting`) is not a payment yet.
_VISIBLE = "status <> 'submitting'"


@router.get("/payments/{payment_id}", summary="One payment")
async def get_payment(
    payment_id: Annotated[str, Path(max_length=128, pattern=r"^[\x21-\x7e]+$")],
    request: Request,
    _: PaymentsReader,
) -> dict[str, Any]:
    pool = staff_services(request).pool
    async with pool.acquire() as conn:
        if await conn.fetchval(f"SELECT 1 FROM payments WHERE id = $1 AND {_VISIBLE}", payment_id) is None:
            raise ApiError(404, "PaymentNotFound", f"There is no payment {payment_id}.")
        obj: dict[str, Any] = jsonable_encoder(await payment_event_object(conn, payment_id))
    return obj


@router.get("/payments", summary="Payments, oldest first, paged")
async def list_payments(
    request: Request,
    _: PaymentsReader,
    invoice_external_id: Annotated[str | None, Query(pattern=EXTERNAL_ID_PATTERN)] = None,
    limit: Limit = DEFAULT_LIMIT,
    starting_after: StartingAfter = None,
) -> Page[dict[str, Any]]:
    pool = staff_services(request).pool
    after = await keyset_after(pool, "payments", starting_after)
    rows = await pool.fetch(
        f"SELECT p.id FROM payments p JOIN invoices i ON i.id = p.invoice_id WHERE p.{_VISIBLE}"
        " AND ($1::text IS NULL OR i.external_id = $1)"
        " AND ($2::timestamptz IS NULL OR (p.created_at, p.id) > ($2, $3))"
        " ORDER BY p.created_at, p.id LIMIT $4",
        invoice_external_id,
        after["created_at"] if after else None,
        after["id"] if after else None,
        limit + 1,
    )
    async with pool.acquire() as conn:
        objects = [jsonable_encoder(await payment_event_object(conn, r["id"])) for r in rows]
    return page_of(objects, limit)
