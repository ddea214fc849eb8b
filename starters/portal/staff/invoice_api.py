"""`GET /api/staff/invoices/{invoice_id}`: the invoice and every payment's life, for machines (SPEC §4, §9).

Staff need to answer "did it go through, and if not why" without reading the audit trail: each
payment with its status, the return code and its Nacha meaning, whether the return was unauthorized
(no fresh pay link, staff follow up), and when it was submitted, expected to settle, settled, failed
or was returned. The console's invoice page reads the same store.
"""

from fastapi import APIRouter, Depends

from domain.ach_returns import return_code
from domain.payment_notice import lifecycle_status
from infra.stores.invoices import fetch_standing
from infra.stores.payment_records import PaymentRecord, invoice_payments
from starters.portal.auth import require_staff
from starters.portal.deps import Deps
from starters.portal.errors import ERROR_RESPONSES, PortalError
from starters.portal.path_ids import PathId
from starters.portal.payment_schemas import StaffInvoiceView, StaffPaymentView

router = APIRouter(
    prefix="/api/staff",
    tags=["staff"],
    dependencies=[Depends(require_staff)],
    responses={k: v for k, v in ERROR_RESPONSES.items() if k in (401, 404, 422)},
)

InvoiceId = PathId


def staff_payment_view(record: PaymentRecord) -> StaffPaymentView:
    code = return_code(record.return_code) if record.return_code else None
    return StaffPaymentView(
        payment_id=record.payment_id,
        status=lifecycle_status(record.status),
        amount_cents=record.amount_cents,
        currency=record.currency,
        account_last4=record.account_last4,
        decline_reason=record.decline_reason,
        return_code=record.return_code,
        return_meaning=code.meaning if code else None,
        unauthorized_return=bool(code and code.unauthorized),
        submitted_at=record.submitted_at,
        expected_settlement_at=record.expected_settlement_at,
        settled_at=record.settled_at,
        failed_at=record.failed_at,
        returned_at=record.returned_at,
        canceled_at=record.canceled_at,
    )


@router.get("/invoices/{invoice_id}", summary="The invoice with its payments: status, return code, times")
async def invoice_with_payments(invoice_id: InvoiceId, deps: Deps) -> StaffInvoiceView:
    invoice = await fetch_standing(deps.pool, invoice_id)
    if invoice is None:
        raise PortalError(404, "InvoiceNotFound", f"No invoice {invoice_id}.")
    payments = await invoice_payments(deps.pool, invoice_id)
    return StaffInvoiceView(
        invoice_id=invoice.invoice_id,
        number=invoice.number,
        customer_id=invoice.customer_id,
        kind=invoice.kind,
        status=invoice.status,
        amount_cents=invoice.amount_cents,
        balance_cents=invoice.balance_cents,
        currency=invoice.currency,
        payments=[staff_payment_view(p) for p in payments],
    )
