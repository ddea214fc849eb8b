"""`/staff/invoices/{id}`: the invoice, who the code goes to, its attempts, payments and audit trail.

`Send payment request` first shows a confirmation naming the recipient with the Customer Portal
Payer tag and the masked destinations the code will go to, then sends through the same function
as the staff API. Attempts come from visibility and, for a running one, its `state` query; a
staff member may cancel a running attempt with a reason, audited by the workflow.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from domain.attempt import AttemptState, CancelInput, workflow_id_for
from domain.audit import verify_chain
from domain.channels import Channel, channels_on_file, mask_destination
from domain.money import format_amount
from domain.status import PaymentStatus
from infra.stores import console_reads as reads
from infra.stores.audit_trail import fetch_trail
from infra.stores.contact_records import customer_contacts, effective_payer
from infra.stores.payment_records import PaymentRecord, invoice_payments
from infra.stores.staff_sessions import StaffSession, set_flash
from starters.attempt_reads import literal, query_state
from starters.portal.deps import Deps
from starters.portal.errors import PortalError
from starters.portal.staff.api import send_payment_request
from starters.portal.staff.console.web import (
    PlainId,
    Staff,
    form_text,
    not_found,
    redirect,
    render,
    require_csrf,
    staff_context,
)
from starters.portal.staff.invoice_api import staff_payment_view
from starters.workflow_client import AttemptNotFound, AttemptRefused
from workflows import search_attributes as sa

router = APIRouter(include_in_schema=False)

RUNS_SHOWN = 20


@dataclass
class AttemptRow:
    run_id: str
    status: str
    running: bool
    started_at: datetime | None
    closed_at: datetime | None
    waiting_for: str

    @property
    def cancellable(self) -> bool:
        return self.running and self.status not in (PaymentStatus.SUBMITTING.value,)


async def load_attempts(deps: Deps, invoice_id: str) -> tuple[list[AttemptRow], str | None]:
    """Runs of this invoice's workflow, newest first, and a note when Temporal could not answer."""
    client = deps.gateway.client
    workflow_id = workflow_id_for(invoice_id)
    rows: dict[str, AttemptRow] = {}
    note = None
    try:
        query = f"WorkflowId = {literal(workflow_id)}"
        async for wf in client.list_workflows(query, limit=RUNS_SHOWN):
            running = wf.status is WorkflowExecutionStatus.RUNNING
            status = wf.typed_search_attributes.get(sa.PAYMENT_STATUS) or "?"
            rows[wf.run_id] = AttemptRow(
                wf.run_id,
                status,
                running,
                wf.start_time,
                wf.close_time,
                "" if running else f"Finished: {status}.",
            )
    except ValueError:
        note = "This invoice id cannot be searched in Temporal."
    except RPCError:
        note = "Temporal did not answer; attempts may be missing."
    # Visibility lags; the latest run's own answer is current.
    try:
        latest: AttemptState | None = await deps.gateway.state(invoice_id)
    except (AttemptNotFound, RPCError):
        latest = None
    if latest is not None:
        row = rows.get(latest.run_id) or AttemptRow(latest.run_id, "", False, None, None, "")
        row.status = latest.status.value
        row.running = not latest.status.is_terminal
        row.waiting_for = latest.waiting_for
        rows[latest.run_id] = row
    for row in rows.values():
        if row.running and not row.waiting_for:
            state = await query_state(client, workflow_id, row.run_id)
            row.waiting_for = state.waiting_for if isinstance(state, AttemptState) else state
    ordered = sorted(rows.values(), key=lambda r: (r.started_at is None, r.started_at), reverse=True)
    return ordered, note


async def _invoice_page(
    request: Request,
    deps: Deps,
    staff: StaffSession,
    invoice_id: str,
    *,
    confirm: bool = False,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    invoice = await reads.invoice(deps.pool, invoice_id)
    if invoice is None:
        return await not_found(request, staff, "invoice", invoice_id)
    contacts = await customer_contacts(deps.pool, invoice["customer_id"])
    payer = effective_payer(contacts)
    destinations: list[str] = []
    if payer is not None:
        destinations = [
            mask_destination(ch, (payer.email if ch is Channel.EMAIL else payer.phone) or "")
            for ch in channels_on_file(payer.email, payer.phone)
        ]
    attempts, attempts_note = await load_attempts(deps, invoice_id)
    trail = await fetch_trail(deps.pool, invoice_id)
    return await render(
        request,
        "staff/invoice.html",
        {
            "invoice": invoice,
            "amount": format_amount(invoice["balance_cents"], invoice["currency"]),
            "payer": payer,
            "destinations": destinations,
            "confirm": confirm and invoice["status"] != "paid",
            "attempts": attempts,
            "attempts_note": attempts_note,
            "payments": [_payment_row(p) for p in await invoice_payments(deps.pool, invoice_id)],
            "trail": trail,
            "chain_ok": verify_chain(trail, key=deps.audit_key),
            "errors": errors or {},
            "format_amount": format_amount,
        },
        staff=staff,
        status_code=status_code,
    )


def _payment_row(record: PaymentRecord) -> dict[str, Any]:
    """The same reading as the staff API's (`staff_payment_view`): status, return code and meaning, times."""
    view = staff_payment_view(record)
    reason = view.decline_reason or ""
    if view.return_code:
        reason = f"{view.return_code} {view.return_meaning}"
        if view.unauthorized_return:
            reason += " (unauthorized: no new pay link sent)"
    if view.returned_at:
        life = f"returned {_utc(view.returned_at)}"
    elif view.failed_at:
        life = f"failed {_utc(view.failed_at)}"
    elif view.canceled_at:
        life = f"canceled {_utc(view.canceled_at)}"
    elif view.settled_at:
        life = f"settled {_utc(view.settled_at)}"
    elif view.status == "processing" and view.expected_settlement_at:
        life = f"expected to settle by {_utc(view.expected_settlement_at)}"
    else:
        life = ""
    return {
        "id": view.payment_id,
        "amount": format_amount(view.amount_cents, view.currency),
        "status": view.status,
        "account_last4": view.account_last4,
        "reason": reason,
        "life": life,
        "created_at": view.submitted_at,
    }


def _utc(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


@router.get("/staff/invoices/{invoice_id}", response_class=HTMLResponse)
async def invoice_page(
    request: Request, deps: Deps, staff: Staff, invoice_id: PlainId, confirm: str = ""
) -> HTMLResponse:
    return await _invoice_page(request, deps, staff, invoice_id, confirm=confirm == "send")


def _back(invoice_id: str) -> str:
    return f"/staff/invoices/{quote(invoice_id, safe='')}"


@router.post("/staff/invoices/{invoice_id}/payment-requests")
async def send_request(request: Request, deps: Deps, staff: Staff, invoice_id: PlainId) -> Response:
    form = await request.form()
    require_csrf(staff, form)
    try:
        sent = await send_payment_request(request, deps, invoice_id, staff_context(request, staff))
    except PortalError as exc:
        if exc.http_status == 404:
            return await _invoice_page(request, deps, staff, invoice_id, status_code=404)
        await set_flash(deps.pool, staff, f"Not sent: {exc.message}")
        return redirect(_back(invoice_id))
    delivery = sent.delivery
    if delivery.sent:
        notice = f"Payment request sent to {sent.recipient.name} at {delivery.destination}."
    else:
        notice = f"The link was made but not sent to {sent.recipient.name}: {delivery.problem}"
    await set_flash(deps.pool, staff, notice)
    return redirect(_back(invoice_id))


@router.post("/staff/invoices/{invoice_id}/attempts/{run_id}/cancel", response_class=HTMLResponse)
async def cancel_attempt(
    request: Request, deps: Deps, staff: Staff, invoice_id: PlainId, run_id: PlainId
) -> Response:
    form = await request.form()
    require_csrf(staff, form)
    try:
        uuid.UUID(run_id)
    except ValueError:
        return await _invoice_page(request, deps, staff, invoice_id, status_code=404)
    reason = (form_text(form, "reason", limit=200) or "").strip()
    if len(reason) < 3:
        return await _invoice_page(
            request,
            deps,
            staff,
            invoice_id,
            errors={
                run_id: "Say why the attempt is being cancelled (at least 3 characters, no control characters)."
            },
            status_code=422,
        )
    try:
        await deps.gateway.cancel(
            invoice_id,
            run_id,
            CancelInput(reason=f"cancelled by staff: {reason}", client=staff_context(request, staff)),
        )
    except (AttemptNotFound, AttemptRefused) as exc:
        await set_flash(deps.pool, staff, f"Not cancelled: {exc}.")
    else:
        await set_flash(deps.pool, staff, "The attempt was cancelled. Nothing was charged.")
    return redirect(_back(invoice_id))
