"""`GET /api/portal/payment`: what became of the invoice's payment, for whoever holds its pay link.

After `PAID` the attempt is over but the money is not (SPEC §9): the debit is processing, then
settles, or fails or comes back. Opening an attempt while a debit is processing is still `409`
(SPEC §4); this call is how the pay link learns why, and what the customer may do next. The page
(`pages.py`) renders the same view into its first HTML, so a reload shows it without a round trip.
"""

from datetime import UTC, datetime

import asyncpg
from fastapi import APIRouter

from domain.invoice_standing import opening_refusal
from domain.payment_notice import lifecycle_status, payment_notice
from infra.stores.invoices import fetch_standing
from infra.stores.payment_records import PaymentRecord, latest_accepted_payment
from starters.portal.auth import Claims
from starters.portal.deps import Deps
from starters.portal.errors import ERROR_RESPONSES, PortalError
from starters.portal.payment_schemas import LinkInvoiceView, LinkPaymentStatusView, LinkPaymentView

router = APIRouter(prefix="/api/portal", tags=["customer"], responses=ERROR_RESPONSES)


def link_payment_view(record: PaymentRecord) -> LinkPaymentView | None:
    status = lifecycle_status(record.status)
    notice = payment_notice(status, record.return_code)
    if notice is None:
        return None
    return LinkPaymentView(
        status=status,
        phase=notice.phase,
        amount_cents=record.amount_cents,
        currency=record.currency,
        account_last4=record.account_last4,
        submitted_at=record.submitted_at,
        expected_settlement_at=record.expected_settlement_at,
        settled_at=record.settled_at,
        ended_at=record.ended_at,
        return_code=record.return_code,
        reason=notice.reason,
        next_step=notice.next_step,
    )


async def link_payment_status(pool: asyncpg.Pool, invoice_id: str) -> LinkPaymentStatusView | None:
    """None when the invoice does not exist."""
    standing = await fetch_standing(pool, invoice_id)
    if standing is None:
        return None
    now = datetime.now(UTC)
    record = await latest_accepted_payment(pool, invoice_id)
    return LinkPaymentStatusView(
        invoice=LinkInvoiceView(
            number=standing.number,
            amount_cents=standing.amount_cents,
            balance_cents=standing.balance_cents,
            currency=standing.currency,
            status=standing.status,
        ),
        payment=link_payment_view(record) if record is not None else None,
        can_pay=opening_refusal(standing, invoice_id, now) is None,
        server_time=now,
    )


@router.get(
    "/payment",
    summary="The link's invoice and its latest accepted payment: processing, settled, or did not go through",
)
async def invoice_payment(deps: Deps, claims: Claims) -> LinkPaymentStatusView:
    view = await link_payment_status(deps.pool, claims.invoice_id)
    if view is None:
        raise PortalError(404, "InvoiceNotFound", "We could not find this invoice.")
    return view
