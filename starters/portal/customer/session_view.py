"""The customer's view of an attempt (`SessionView`), built from the attempt's state in one place.

Every customer answer that shows the attempt (open, reload, and the payment a submit accepted)
reads it here, so the page sees the same fields however it asked. Only the payment's own status is
read anew from PostgreSQL: the attempt knows the debit was accepted, not whether it settled (§9).
"""

from datetime import UTC, datetime

import asyncpg

from domain.attempt import AttemptState, PaymentReceipt
from domain.authorization import ach_authorization_text
from domain.payment_notice import lifecycle_status
from domain.status import PaymentStatus
from infra.stores.payment_records import fetch_payment
from starters.portal.schemas import ChannelView, CodeView, InvoiceView, PayerView, PaymentView, SessionView
from starters.workflow_client import session_id_for

ACCOUNT_LAST4_PLACEHOLDER = "{account_last4}"


def server_now() -> datetime:
    return datetime.now(UTC)


async def payment_view(pool: asyncpg.Pool, receipt: PaymentReceipt | None) -> PaymentView | None:
    """The attempt's receipt plus the payment's own status now (SPEC §9): accepted is not settled."""
    if receipt is None:
        return None
    view = PaymentView.model_validate(receipt.model_dump())
    record = await fetch_payment(pool, receipt.payment_id) if receipt.payment_id else None
    if record is None:
        return view
    return view.model_copy(
        update={
            "status": lifecycle_status(record.status),
            "expected_settlement_at": record.expected_settlement_at,
        }
    )


async def session_view(pool: asyncpg.Pool, state: AttemptState) -> SessionView:
    retry_at = state.locked_until if state.status is PaymentStatus.LOCKED else None
    invoice = state.invoice
    authorization = None
    if invoice is not None:
        authorization = ach_authorization_text(
            amount_cents=invoice.amount_cents,
            currency=invoice.currency,
            invoice_number=invoice.number,
            account_last4=ACCOUNT_LAST4_PLACEHOLDER,
        )
    return SessionView(
        session_id=session_id_for(state.invoice_id, state.run_id),
        status=state.status,
        invoice=InvoiceView.model_validate(invoice.model_dump()) if invoice is not None else None,
        payer=PayerView(name=state.payer_name) if state.payer_name else None,
        channels=[ChannelView(channel=c.channel, destination=c.destination) for c in state.channels],
        failed_channels=list(state.failed_channels),
        otp_required=state.otp_required,
        attempts_remaining=state.attempts_remaining,
        sends_remaining=state.sends_remaining,
        code=CodeView.model_validate(state.code.model_dump()) if state.code is not None else None,
        code_expires_at=state.code_expires_at,
        resend_available_at=state.resend_available_at,
        idle_expires_at=state.idle_expires_at,
        payment_due_by=state.payment_due_by,
        payment=await payment_view(pool, state.payment),
        reason=state.reason,
        waiting_for=state.waiting_for,
        retry_at=retry_at,
        authorization_text=authorization,
        server_time=server_now(),
    )
