"""The customer's half of SPEC §4: every call carries the pay-link token and messages the attempt.

The browser never names a destination: it picks a channel, and the workflow sends the code to
what is stored on the payer contact. Each action carries the caller's IP and user agent so the
audit event it causes can say who did it.
"""

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import TypeVar

from fastapi import APIRouter, Request

from domain.attempt import (
    AttemptState,
    CancelInput,
    PaymentDetails,
    PaymentReceipt,
    RequestCodeInput,
    SubmitPaymentInput,
    VerifyCodeInput,
)
from domain.authorization import ach_authorization_text
from domain.errors import RefusalType
from domain.payment_notice import lifecycle_status
from domain.status import PaymentStatus
from infra.stores.payment_records import fetch_payment
from starters.portal.auth import Claims, session_for_invoice
from starters.portal.deps import Deps, PortalDeps, client_context, request_id_for
from starters.portal.errors import ERROR_RESPONSES
from starters.portal.schemas import (
    CancelView,
    ChannelView,
    CodeSentView,
    CodeView,
    InvoiceView,
    PayerView,
    PaymentBody,
    PaymentResultView,
    PaymentView,
    RequestCodeBody,
    SessionView,
    VerifyCodeBody,
    VerifyView,
)
from starters.workflow_client import AttemptNotFound, AttemptRefused, session_id_for

router = APIRouter(prefix="/api/portal", tags=["customer"], responses=ERROR_RESPONSES)

ACCOUNT_LAST4_PLACEHOLDER = "{account_last4}"

CANCEL_SETTLE_SECONDS = 10.0

T = TypeVar("T")


def _now() -> datetime:
    return datetime.now(UTC)


async def payment_view(deps: PortalDeps, receipt: PaymentReceipt | None) -> PaymentView | None:
    """The attempt's receipt plus the payment's own status now (SPEC §9): accepted is not settled."""
    if receipt is None:
        return None
    view = PaymentView.model_validate(receipt.model_dump())
    record = await fetch_payment(deps.pool, receipt.payment_id) if receipt.payment_id else None
    if record is None:
        return view
    return view.model_copy(
        update={
            "status": lifecycle_status(record.status),
            "expected_settlement_at": record.expected_settlement_at,
        }
    )


async def session_view(deps: PortalDeps, state: AttemptState) -> SessionView:
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
        payment=await payment_view(deps, state.payment),
        reason=state.reason,
        waiting_for=state.waiting_for,
        retry_at=retry_at,
        authorization_text=authorization,
        server_time=_now(),
    )


async def _message(deps: PortalDeps, invoice_id: str, run_id: str, action: Awaitable[T]) -> T:
    """Send an update; a run that has already finished answers 409 with the state it ended in."""
    try:
        return await action
    except AttemptNotFound:
        state = await deps.gateway.state(invoice_id, run_id)  # AttemptNotFound again: truly unknown, 404
        raise AttemptRefused(
            RefusalType.INVALID_STATE,
            f"not allowed: the attempt is {state.status.value}",
            status=state.status,
        ) from None


@router.post("/sessions", summary="Open (or join) the Pay Your Invoice attempt for the link's invoice")
async def open_session(request: Request, deps: Deps, claims: Claims) -> SessionView:
    try:
        state = await deps.gateway.open(claims.invoice_id, client_context(request))
    except AttemptRefused as refused:
        # An attempt that can only end NO_CONTACT_METHOD is an answer the customer must see (the
        # page tells them to have their profile updated), not an error: show the run that said so.
        if refused.status is not PaymentStatus.NO_CONTACT_METHOD:
            raise
        state = await deps.gateway.state(claims.invoice_id)
        if state.status is not PaymentStatus.NO_CONTACT_METHOD:
            raise
    return await session_view(deps, state)


@router.get("/sessions/{session_id}", summary="The attempt's current state")
async def get_session(session_id: str, deps: Deps, claims: Claims) -> SessionView:
    invoice_id, run_id = session_for_invoice(session_id, claims)
    return await session_view(deps, await deps.gateway.state(invoice_id, run_id))


@router.post("/sessions/{session_id}/code", summary="Send a code to the payer's email or phone on file")
async def request_code(
    session_id: str, body: RequestCodeBody, request: Request, deps: Deps, claims: Claims
) -> CodeSentView:
    invoice_id, run_id = session_for_invoice(session_id, claims)
    result = await _message(
        deps,
        invoice_id,
        run_id,
        deps.gateway.request_code(
            invoice_id,
            run_id,
            RequestCodeInput(channel=body.channel, client=client_context(request)),
            request_id_for(request, session_id, "code", body),
        ),
    )
    return CodeSentView(session_id=session_id, server_time=_now(), **result.model_dump())


@router.post("/sessions/{session_id}/verify", summary="Check the code the customer typed")
async def verify_code(
    session_id: str, body: VerifyCodeBody, request: Request, deps: Deps, claims: Claims
) -> VerifyView:
    invoice_id, run_id = session_for_invoice(session_id, claims)
    result = await _message(
        deps,
        invoice_id,
        run_id,
        deps.gateway.verify_code(
            invoice_id,
            run_id,
            VerifyCodeInput(code=body.code, client=client_context(request)),
            request_id_for(request, session_id, "verify", body),
        ),
    )
    return VerifyView(session_id=session_id, **result.model_dump())


@router.post("/sessions/{session_id}/payment", summary="Submit bank details and debit the account")
async def submit_payment(
    session_id: str, body: PaymentBody, request: Request, deps: Deps, claims: Claims
) -> PaymentResultView:
    invoice_id, run_id = session_for_invoice(session_id, claims)
    details = PaymentDetails.model_validate(body.model_dump())
    result = await _message(
        deps,
        invoice_id,
        run_id,
        deps.gateway.submit_payment(
            invoice_id,
            run_id,
            SubmitPaymentInput(details=details, client=client_context(request)),
            request_id_for(request, session_id, "payment", body),
        ),
    )
    payment = await payment_view(deps, result.payment)
    assert payment is not None
    return PaymentResultView(session_id=session_id, status=result.status, payment=payment)


@router.post("/sessions/{session_id}/cancel", summary="Abandon the attempt before any money moves")
async def cancel(session_id: str, request: Request, deps: Deps, claims: Claims) -> CancelView:
    invoice_id, run_id = session_for_invoice(session_id, claims)
    state = await deps.gateway.cancel(
        invoice_id, run_id, CancelInput(reason="cancelled by customer", client=client_context(request))
    )
    # `cancel` is a signal (SPEC §2): the attempt records it, then ends. Answer with where it ended.
    deadline = asyncio.get_running_loop().time() + CANCEL_SETTLE_SECONDS
    while not state.status.is_terminal and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
        state = await deps.gateway.state(invoice_id, run_id)
    return CancelView(session_id=session_id, status=state.status)
