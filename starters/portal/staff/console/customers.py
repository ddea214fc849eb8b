"""`/staff` and `/staff/customers/{id}`: find a customer, see who pays, edit a contact (SPEC §10).

"Open the customer's contact record. Click the Edit (pencil) icon. Select Mark as Customer Portal
Payer. Save the changes." The save goes through `staff_actions.change_contact`, the same rules as
the staff API, audited with the signed-in staff member's email.
"""

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from domain.audit import verify_chain
from domain.channels import Channel, channels_on_file, mask_destination
from infra.stores import console_reads as reads
from infra.stores.audit_trail import fetch_chain
from infra.stores.contact_records import ContactRecord, customer_contacts, effective_payer
from infra.stores.staff_sessions import StaffSession, set_flash
from starters.portal.deps import Deps
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
from starters.staff_changes.actions import (
    StaffActionRefused,
    change_contact,
    staff_services,
)
from starters.staff_changes.contact_change import ContactChangeOutcome

router = APIRouter(include_in_schema=False)

SEARCH_LIMIT = 100


@router.get("/staff", response_class=HTMLResponse)
async def customers_page(request: Request, deps: Deps, staff: Staff, q: str = "") -> HTMLResponse:
    query = q.strip() if len(q) <= SEARCH_LIMIT and q.isprintable() else ""
    found = await reads.search_customers(deps.pool, query)
    return await render(request, "staff/customers.html", {"q": query, "customers": found}, staff=staff)


def contact_rows(contacts: list[ContactRecord]) -> list[dict[str, Any]]:
    payer = effective_payer(contacts)
    return [
        {
            "contact": c,
            "receives_otp": payer is not None and payer.id == c.id,
            "destinations": [
                mask_destination(ch, (c.email if ch is Channel.EMAIL else c.phone) or "")
                for ch in channels_on_file(c.email, c.phone)
            ],
        }
        for c in contacts
    ]


async def _customer_page(
    request: Request,
    deps: Deps,
    staff: StaffSession,
    customer_id: str,
    *,
    edit: str | None = None,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    found = await reads.customer(deps.pool, customer_id)
    if found is None:
        return await not_found(request, staff, "customer", customer_id)
    contacts = await customer_contacts(deps.pool, customer_id)
    trail = await fetch_chain(deps.pool, f"customer:{customer_id}")
    return await render(
        request,
        "staff/customer.html",
        {
            "customer": found,
            "contacts": contact_rows(contacts),
            "payer": effective_payer(contacts),
            "invoices": await reads.customer_invoices(deps.pool, customer_id),
            "edit": edit if any(c.id == edit for c in contacts) else None,
            "form": form or {},
            "errors": errors or {},
            "trail": trail,
            "chain_ok": verify_chain(trail, key=deps.audit_key),
        },
        staff=staff,
        status_code=status_code,
    )


@router.get("/staff/customers/{customer_id}", response_class=HTMLResponse)
async def customer_page(
    request: Request, deps: Deps, staff: Staff, customer_id: PlainId, edit: str | None = None
) -> HTMLResponse:
    return await _customer_page(request, deps, staff, customer_id, edit=edit)


def saved_notice(name: str, outcome: ContactChangeOutcome) -> str:
    parts = [f"Saved {name}."]
    if outcome.payer_changed:
        parts.append("The Customer Portal Payer changed.")
    if outcome.links_revoked_before is not None:
        parts.append("Pay links sent earlier no longer work.")
        cancelled = len(outcome.cancelled_invoice_ids)
        if cancelled:
            parts.append(f"{cancelled} running payment attempt{'s' if cancelled != 1 else ''} cancelled.")
        if outcome.notified:
            parts.append(f"Told {', '.join(outcome.notified)}.")
    parts.extend(f"Not done: {p}." for p in outcome.problems)
    return " ".join(parts)


@router.post("/staff/customers/{customer_id}/contacts/{contact_id}", response_class=HTMLResponse)
async def save_contact(
    request: Request, deps: Deps, staff: Staff, customer_id: PlainId, contact_id: PlainId
) -> Response:
    form = await request.form()
    require_csrf(staff, form)
    email = form_text(form, "email")
    phone = form_text(form, "phone", limit=40)
    typed = {"email": email or "", "phone": phone or ""}
    errors: dict[str, str] = {}
    if email is None:
        errors["email"] = "The email address is too long or contains characters that are not allowed."
    if phone is None:
        errors["phone"] = "The phone number is too long or contains characters that are not allowed."
    mark = form.get("portal_payer") == "on"
    if not errors:
        try:
            outcome = await change_contact(
                staff_services(request),
                contact_id=contact_id,
                customer_id=customer_id,
                details={"email": email, "phone": phone},
                portal_payer=mark,
                client=staff_context(request, staff),
            )
        except StaffActionRefused as exc:
            if exc.field is None:
                return await _customer_page(request, deps, staff, customer_id, status_code=exc.http_status)
            errors[exc.field] = exc.message
        else:
            contacts = await customer_contacts(deps.pool, customer_id)
            name = next((c.name for c in contacts if c.id == contact_id), contact_id)
            await set_flash(deps.pool, staff, saved_notice(name, outcome))
            return redirect(f"/staff/customers/{quote(customer_id, safe='')}")
    return await _customer_page(
        request,
        deps,
        staff,
        customer_id,
        edit=contact_id,
        form={**typed, "portal_payer": mark},
        errors=errors,
        status_code=422,
    )
