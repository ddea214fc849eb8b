"""Invoices on /api/v1 (SPEC §12): upsert by external id, void, read, list, send the pay link."""

from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from domain.api_scopes import INVOICES_WRITE, PAYMENTS_READ
from domain.channels import Channel
from domain.company_records import EXTERNAL_ID_PATTERN, RecordFieldError, checked_invoice
from infra.stores import company_records as records
from infra.stores.events import payment_event_object
from infra.stores.payers import fetch_payer
from starters.company_records import RecordRefused, upsert_invoice, void_invoice
from starters.portal.api_v1.auth import ApiKeyPrincipal, api_client_context, require_scope
from starters.portal.api_v1.customers import answer, refused
from starters.portal.api_v1.errors import API_ERROR_RESPONSES, ApiError
from starters.portal.api_v1.paging import DEFAULT_LIMIT, Limit, Page, StartingAfter, keyset_after, page_of
from starters.portal.api_v1.schemas import ExternalId, InvoiceBody, PaymentRequestBody
from starters.portal.deps import portal_deps
from starters.portal.errors import PortalError
from starters.portal.staff.api import send_payment_request
from starters.staff_changes.actions import staff_services

router = APIRouter(prefix="/api/v1", tags=["api v1"], responses=API_ERROR_RESPONSES)
InvoicesWriter = Annotated[ApiKeyPrincipal, Depends(require_scope(INVOICES_WRITE))]
InvoicesReader = Annotated[ApiKeyPrincipal, Depends(require_scope(INVOICES_WRITE, PAYMENTS_READ))]
InvoiceStatus = Literal["open", "pending", "paid", "void"]


@router.put("/invoices/{external_id}", summary="Create or update an invoice by the company's id")
async def put_invoice(
    external_id: ExternalId, body: InvoiceBody, request: Request, principal: InvoicesWriter
) -> JSONResponse:
    services = staff_services(request)
    try:
        fields = checked_invoice(
            external_id,
            body.customer_external_id,
            body.number,
            body.kind,
            body.amount_cents,
            body.currency,
            body.due_date,
            max_cents=services.settings.max_invoice_cents,
        )
        result = await upsert_invoice(services, fields, api_client_context(request, principal))
    except (RecordRefused, RecordFieldError) as exc:
        raise refused(exc) from None
    obj = await _invoice_view(services.pool, external_id)
    if result.problems:
        obj["problems"] = result.problems
    return answer(result.status, obj)


@router.post(
    "/invoices/{external_id}/void", summary="Void an invoice: its attempt is cancelled, its links answer 410"
)
async def post_void(external_id: ExternalId, request: Request, principal: InvoicesWriter) -> JSONResponse:
    services = staff_services(request)
    try:
        result = await void_invoice(services, external_id, api_client_context(request, principal))
    except RecordRefused as exc:
        raise refused(exc) from None
    obj = await _invoice_view(services.pool, external_id)
    if result.problems:
        obj["problems"] = result.problems
    return JSONResponse(jsonable_encoder(obj))


@router.get("/invoices/{external_id}", summary="An invoice with its payer and payments")
async def get_invoice(external_id: ExternalId, request: Request, _: InvoicesReader) -> JSONResponse:
    return JSONResponse(jsonable_encoder(await _invoice_view(staff_services(request).pool, external_id)))


@router.get("/invoices", summary="Invoices, oldest first, paged")
async def list_invoices(
    request: Request,
    _: InvoicesReader,
    customer_external_id: Annotated[str | None, Query(pattern=EXTERNAL_ID_PATTERN)] = None,
    status: InvoiceStatus | None = None,
    limit: Limit = DEFAULT_LIMIT,
    starting_after: StartingAfter = None,
) -> Page[dict[str, Any]]:
    pool = staff_services(request).pool
    after = await keyset_after(pool, "invoices", starting_after)
    rows = await pool.fetch(
        "SELECT i.id, i.external_id, i.number, i.kind, i.amount_cents, i.balance_cents, i.currency, i.status,"
        " i.due_date, i.created_at, i.updated_at, i.customer_id, c.external_id AS customer_external_id"
        " FROM invoices i JOIN customers c ON c.id = i.customer_id"
        " WHERE ($1::text IS NULL OR c.external_id = $1) AND ($2::text IS NULL OR i.status = $2)"
        "   AND ($3::timestamptz IS NULL OR (i.created_at, i.id) > ($3, $4))"
        " ORDER BY i.created_at, i.id LIMIT $5",
        customer_external_id,
        status,
        after["created_at"] if after else None,
        after["id"] if after else None,
        limit + 1,
    )
    return page_of([jsonable_encoder(records.invoice_object(r)) for r in rows], limit)


@router.post(
    "/invoices/{external_id}/payment-requests",
    summary="Send the Pay Your Invoice link to the payer, as the console's Send payment request does",
)
async def post_payment_request(
    external_id: ExternalId,
    request: Request,
    principal: InvoicesWriter,
    body: PaymentRequestBody | None = None,
) -> JSONResponse:
    deps = portal_deps(request)
    row = await records.invoice_by_external(deps.pool, external_id)
    if row is None:
        raise ApiError(404, "InvoiceNotFound", f"There is no invoice with external_id {external_id}.")
    channels = [Channel(c) for c in (body.channels if body else ["email", "sms"])]
    try:
        view = await send_payment_request(
            request, deps, row["id"], api_client_context(request, principal), channels=channels
        )
    except PortalError as exc:
        raise ApiError(exc.http_status, exc.error, exc.message, reason=exc.reason) from None
    sent = {
        "pay_url": view.url,
        "expires_at": view.expires_at,
        "sent": view.delivery.sent,
        "sent_to": {"channel": view.delivery.channel, "destination": view.delivery.destination},
        "problem": view.delivery.problem,
    }
    return JSONResponse(jsonable_encoder(sent), status_code=201)


async def _invoice_view(pool: asyncpg.Pool, external_id: str) -> dict[str, Any]:
    row = await records.invoice_by_external(pool, external_id)
    if row is None:
        raise ApiError(404, "InvoiceNotFound", f"There is no invoice with external_id {external_id}.")
    obj = records.invoice_object(row)
    payer = await fetch_payer(pool, row["customer_id"])
    obj["payer"] = (
        None
        if payer is None
        else {"id": payer.contact_id, "name": payer.name, "portal_payer": payer.designated}
    )
    payment_ids = await pool.fetch(
        "SELECT id FROM payments WHERE invoice_id = $1 AND status <> 'submitting' ORDER BY created_at, id",
        row["id"],
    )
    async with pool.acquire() as conn:
        obj["payments"] = [await payment_event_object(conn, r["id"]) for r in payment_ids]
    return obj
