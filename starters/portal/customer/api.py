"""The customer's half of SPEC §4: every call carries the pay-link token and messages the attempt.

The browser never names a destination: it picks a channel, and the workflow sends the code to
what is stored on the payer contact. Each action carries the caller's IP and user agent so the
audit event it causes can say who did it.

The routes trust the gateway (`starters.workflow_client.AttemptGateway`): it already answers a
finished run with a 409 naming the state it ended in, waits for a cancelled run to end, and
answers an attempt that can only end NO_CONTACT_METHOD with that attempt's state.
"""

from fastapi import APIRouter, Request

from domain.attempt import CancelInput, PaymentDetails, RequestCodeInput, SubmitPaymentInput, VerifyCodeInput
from starters.portal.auth import Claims, session_for_invoice
from starters.portal.customer.session_view import payment_view, server_now, session_view
from starters.portal.deps import Deps, client_context, request_id_for
from starters.portal.errors import ERROR_RESPONSES
from starters.portal.link_budgets import LinkAction, LinkBudget
from starters.portal.schemas import (
    CancelView,
    CodeSentView,
    PaymentBody,
    PaymentResultView,
    RequestCodeBody,
    SessionView,
    VerifyCodeBody,
    VerifyView,
)

router = APIRouter(prefix="/api/portal", tags=["customer"], responses=ERROR_RESPONSES)


@router.post("/sessions", summary="Open (or join) the Pay Your Invoice attempt for the link's invoice")
async def open_session(request: Request, deps: Deps, claims: Claims) -> SessionView:
    async with LinkBudget(deps, claims, claims.invoice_id, LinkAction.OPEN):
        state = await deps.gateway.open(claims.invoice_id, client_context(request))
    return await session_view(deps.pool, state)


@router.get("/sessions/{session_id}", summary="The attempt's current state")
async def get_session(session_id: str, deps: Deps, claims: Claims) -> SessionView:
    invoice_id, run_id = session_for_invoice(session_id, claims)
    return await session_view(deps.pool, await deps.gateway.state(invoice_id, run_id))


@router.post("/sessions/{session_id}/code", summary="Send a code to the payer's email or phone on file")
async def request_code(
    session_id: str, body: RequestCodeBody, request: Request, deps: Deps, claims: Claims
) -> CodeSentView:
    invoice_id, run_id = session_for_invoice(session_id, claims)
    async with LinkBudget(deps, claims, invoice_id, LinkAction.CODE, channel=body.channel):
        result = await deps.gateway.request_code(
            invoice_id,
            run_id,
            RequestCodeInput(channel=body.channel, client=client_context(request)),
            request_id_for(request, session_id, "code", body),
        )
    return CodeSentView(session_id=session_id, server_time=server_now(), **result.model_dump())


@router.post("/sessions/{session_id}/verify", summary="Check the code the customer typed")
async def verify_code(
    session_id: str, body: VerifyCodeBody, request: Request, deps: Deps, claims: Claims
) -> VerifyView:
    invoice_id, run_id = session_for_invoice(session_id, claims)
    async with LinkBudget(deps, claims, invoice_id, LinkAction.VERIFY) as budget:
        result = await deps.gateway.verify_code(
            invoice_id,
            run_id,
            VerifyCodeInput(code=body.code, client=client_context(request)),
            request_id_for(request, session_id, "verify", body),
        )
        if result.verified or result.reason == "code_expired":
            await budget.give_back()  # not a wrong code: the link's guesses are not spent
    return VerifyView(session_id=session_id, **result.model_dump())


@router.post("/sessions/{session_id}/payment", summary="Submit bank details and debit the account")
async def submit_payment(
    session_id: str, body: PaymentBody, request: Request, deps: Deps, claims: Claims
) -> PaymentResultView:
    invoice_id, run_id = session_for_invoice(session_id, claims)
    details = PaymentDetails.model_validate(body.model_dump())
    async with LinkBudget(deps, claims, invoice_id, LinkAction.PAYMENT):
        result = await deps.gateway.submit_payment(
            invoice_id,
            run_id,
            SubmitPaymentInput(details=details, client=client_context(request)),
            request_id_for(request, session_id, "payment", body),
        )
    payment = await payment_view(deps.pool, result.payment)
    assert payment is not None
    return PaymentResultView(session_id=session_id, status=result.status, payment=payment)


@router.post("/sessions/{session_id}/cancel", summary="Abandon the attempt before any money moves")
async def cancel(session_id: str, request: Request, deps: Deps, claims: Claims) -> CancelView:
    """`cancel` is a signal (SPEC §2): the gateway waits for the run to end and answers where it ended."""
    invoice_id, run_id = session_for_invoice(session_id, claims)
    async with LinkBudget(deps, claims, invoice_id, LinkAction.CANCEL):
        state = await deps.gateway.cancel(
            invoice_id, run_id, CancelInput(reason="cancelled by customer", client=client_context(request))
        )
    return CancelView(session_id=session_id, status=state.status)
