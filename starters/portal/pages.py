"""`GET /pay/{token}`: the Pay Your Invoice page, rendered on the server, driven by `static/portal.js`.

Opening the page starts nothing: mail scanners fetch links, so an attempt begins only when the
customer presses Pay. The page knows the invoice from PostgreSQL; everything after that comes
from the JSON API, which the workflow answers.
"""

import html
import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from string import Template
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from domain.errors import ErrorType
from domain.invoice_standing import INVOICE_VOID_MESSAGE, INVOICE_VOID_STATUS, opening_refusal
from domain.money import format_amount
from domain.payment_notice import PaymentPhase
from infra.pay_links import PayLinkExpired, PayLinkForged
from infra.stores.invoices import fetch_standing
from starters.portal.dependencies import Deps, client_context
from starters.portal.payment_schemas import LinkPaymentStatusView
from starters.portal.payment_status_api import link_payment_status
from starters.portal.revoked_links import LINK_REVOKED_MESSAGE, link_is_revoked

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
ASSET_VERSION = "2"

router = APIRouter(include_in_schema=False)

# The view that tells each phase of the invoice's latest accepted payment (SPEC §9).
_PAYMENT_VIEW = {
    PaymentPhase.PROCESSING: "payment-processing",
    PaymentPhase.SETTLED: "payment-settled",
    PaymentPhase.DID_NOT_GO_THROUGH: "payment-failed",
}

# The link is a credential: no caching, no referrer, no framing, no script but ours.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
}


@cache
def _template() -> Template:
    return Template((TEMPLATES_DIR / "pay.html").read_text(encoding="utf-8"))


def _json_for_script(value: dict[str, Any]) -> str:
    # Inside <script type="application/json">: keep "</script>" and friends from closing the tag.
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(
    *,
    initial_view: str,
    company_name: str,
    status_code: int = 200,
    token: str | None = None,
    invoice: dict[str, Any] | None = None,
    locked_until: datetime | None = None,
    link_heading: str = "This link is not valid",
    link_message: str = "Ask for a new payment link.",
    payment_status: LinkPaymentStatusView | None = None,
) -> HTMLResponse:
    number = amount = ""
    kind = "invoice"
    config: dict[str, Any] = {"token": token}
    if invoice is not None:
        number = invoice["number"]
        kind = invoice["kind"]
        amount = format_amount(invoice["balance_cents"], invoice["currency"])
        config.update(invoice_id=invoice["id"], invoice_number=number, kind=kind)
    if locked_until is not None:
        config["locked_until"] = locked_until.isoformat()
    if payment_status is not None:
        config["payment_status"] = payment_status.model_dump(mode="json")
    esc = html.escape
    body = _template().substitute(
        title="Pay Your Invoice" if invoice is not None else esc(link_heading),
        company_name=esc(company_name),
        asset_version=ASSET_VERSION,
        initial_view=esc(initial_view),
        invoice_number=esc(number),
        amount_display=esc(amount),
        amount_label="Deposit due" if kind == "deposit" else "Amount due",
        kind_note=(
            "This is a deposit: no verification code is needed."
            if kind == "deposit"
            else "Pay by E-Check or ACH. We'll verify it's you with a one-time code first."
        ),
        link_heading=esc(link_heading),
        link_message=esc(link_message),
        config_json=_json_for_script(config),
    )
    return HTMLResponse(body, status_code=status_code, headers=PAGE_HEADERS)


@router.get("/pay/{token}", response_class=HTMLResponse)
async def pay_page(token: str, request: Request, deps: Deps) -> HTMLResponse:
    company = deps.settings.company_name
    try:
        claims = deps.signer.verify(token)
    except PayLinkExpired:
        return render_page(
            initial_view="link-invalid",
            company_name=company,
            status_code=401,
            link_heading="This link has expired",
            link_message="Payment links work for a limited time. Ask for a new payment link.",
        )
    except PayLinkForged:
        return render_page(initial_view="link-invalid", company_name=company, status_code=401)
    if await link_is_revoked(
        deps.pool,
        claims,
        client_context(request),
        link_ttl_seconds=deps.settings.link_ttl_seconds,
        audit_key=deps.audit_key,
    ):
        return render_page(
            initial_view="link-invalid",
            company_name=company,
            status_code=401,
            link_heading="This link was replaced",
            link_message=LINK_REVOKED_MESSAGE,
        )
    standing = await fetch_standing(deps.pool, claims.invoice_id)
    if standing is not None and standing.status == INVOICE_VOID_STATUS:
        return render_page(
            initial_view="link-invalid",
            company_name=company,
            status_code=410,
            link_heading="This invoice was cancelled",
            link_message=INVOICE_VOID_MESSAGE,
        )
    if standing is None:
        return render_page(
            initial_view="link-invalid",
            company_name=company,
            status_code=404,
            link_heading="Invoice not found",
            link_message="We could not find this invoice. Ask for a new payment link.",
        )
    invoice_data = {
        "id": standing.invoice_id,
        "number": standing.number,
        "kind": standing.kind,
        "balance_cents": standing.balance_cents,
        "currency": standing.currency,
    }
    # The one may-open rule: what the page says is what opening an attempt would answer.
    refusal = opening_refusal(standing, claims.invoice_id, datetime.now(UTC))
    status = await link_payment_status(deps.pool, claims.invoice_id)
    payment = status.payment if status is not None else None
    if refusal is not None and refusal.type is ErrorType.INVOICE_ALREADY_PAID:
        if payment is None or payment.phase is PaymentPhase.DID_NOT_GO_THROUGH:
            # Paid some other way, or nothing left to pay: there is no payment of ours to tell.
            return render_page(initial_view="paid", company_name=company, token=token, invoice=invoice_data)
        return render_page(
            initial_view=_PAYMENT_VIEW[payment.phase],
            company_name=company,
            token=token,
            invoice=invoice_data,
            payment_status=status,
        )
    if refusal is not None and refusal.type is ErrorType.INVOICE_LOCKED:
        return render_page(
            initial_view="locked",
            company_name=company,
            token=token,
            invoice=invoice_data,
            locked_until=refusal.locked_until,
        )
    if payment is not None and payment.phase is PaymentPhase.DID_NOT_GO_THROUGH:
        # The invoice is open again: say why the last payment did not go through and what to do.
        return render_page(
            initial_view=_PAYMENT_VIEW[payment.phase],
            company_name=company,
            token=token,
            invoice=invoice_data,
            payment_status=status,
        )
    return render_page(initial_view="invoice", company_name=company, token=token, invoice=invoice_data)
