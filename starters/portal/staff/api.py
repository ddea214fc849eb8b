"""The staff half of SPEC §4: who pays for a customer, sending the Pay Your Invoice link, the audit trail.

Staff see full contact details (they are the ones who fix a wrong email or phone); the customer
never does. Designating the payer and sending a link are audited with the staff actor.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError

from domain.activity_io import AuditEventInput
from domain.attempt import ClientContext
from domain.audit import AuditEventType
from domain.channels import Channel, channels_on_file, mask_destination
from domain.errors import RefusalType
from domain.events import EventType
from domain.invoice_standing import INVOICE_VOID_REASON, INVOICE_VOID_STATUS
from domain.money import format_amount
from domain.status import PaymentStatus
from infra.pay_links import pay_link_url
from infra.providers.delivery.base import DeliveryError
from infra.providers.delivery.messages import compose_pay_link_message
from infra.stores.audit_trail import append_event, chain_ok, fetch_trail
from infra.stores.events import record_event
from infra.stores.invoices import fetch_standing
from infra.stores.payers import fetch_payer
from starters.portal.auth import require_staff
from starters.portal.deps import Deps, PortalDeps, client_context
from starters.portal.errors import ERROR_RESPONSES, PortalError
from starters.portal.schemas import (
    AuditTrailView,
    ContactsView,
    ContactView,
    DeliveryView,
    DesignatePayerBody,
    DesignationView,
    PaymentRequestView,
    RecipientView,
)
from starters.portal.staff.schemas import ContactChangeView, ContactPatchBody
from starters.staff_changes.actions import (
    StaffActionRefused,
    change_contact,
    outcome_summary,
    staff_services,
)
from starters.staff_changes.contact_change import ContactChangeOutcome


def _consequences(outcome: ContactChangeOutcome) -> dict[str, Any]:
    summary = outcome_summary(outcome)
    summary.pop("previous_payer_contact_id")
    return summary


router = APIRouter(
    prefix="/api/staff",
    tags=["staff"],
    dependencies=[Depends(require_staff)],
    responses={k: v for k, v in ERROR_RESPONSES.items() if k in (401, 404, 409, 422)},
)

# Machines act as `api`: the bearer token is shared, so no header may choose who is named (SPEC §10).
API_ACTOR = "api"

NO_CONTACT_PROBLEM = (
    "The payer has no email or phone on file, so identity cannot be verified: "
    "update the contact details in the customer's profile."
)


def _staff_context(request: Request) -> ClientContext:
    return client_context(request, actor=API_ACTOR)


async def _contacts_view(conn: asyncpg.Connection, customer_id: str) -> ContactsView:
    customer = await conn.fetchrow("SELECT id, name FROM customers WHERE id = $1", customer_id)
    if customer is None:
        raise PortalError(404, "CustomerNotFound", f"No customer {customer_id}.")
    rows = await conn.fetch(
        "SELECT id, name, email, phone, is_primary, portal_payer FROM contacts"
        " WHERE customer_id = $1 ORDER BY portal_payer DESC, is_primary DESC, name, id",
        customer_id,
    )
    payer = await fetch_payer(conn, customer_id)  # the one payer rule
    contacts = [
        ContactView(
            contact_id=r["id"],
            name=r["name"],
            email=r["email"],
            phone=r["phone"],
            is_primary=r["is_primary"],
            portal_payer=r["portal_payer"],
            channels=channels_on_file(r["email"], r["phone"]),
            receives_otp=payer is not None and r["id"] == payer.contact_id,
        )
        for r in rows
    ]
    problem = None
    if payer is None:
        problem = "No contact is marked Customer Portal Payer and there is no primary contact."
    elif not channels_on_file(payer.email, payer.phone):
        problem = NO_CONTACT_PROBLEM
    return ContactsView(
        customer_id=customer["id"],
        customer_name=customer["name"],
        payer_contact_id=payer.contact_id if payer is not None else None,
        payer_source=None if payer is None else ("designated" if payer.designated else "primary"),
        payer_problem=problem,
        contacts=contacts,
    )


@router.get("/customers/{customer_id}/contacts", summary="Contacts with the Customer Portal Payer tag")
async def list_contacts(customer_id: str, deps: Deps) -> ContactsView:
    async with deps.pool.acquire() as conn:
        return await _contacts_view(conn, customer_id)


def _refused(exc: StaffActionRefused) -> PortalError:
    return PortalError(exc.http_status, exc.error, exc.message)


@router.put("/customers/{customer_id}/portal-payer", summary="Mark one contact as the Customer Portal Payer")
async def designate_payer(
    customer_id: str, body: DesignatePayerBody, request: Request, deps: Deps
) -> DesignationView:
    """Marking a new payer cancels running attempts and revokes earlier links (SPEC §11)."""
    async with deps.pool.acquire() as conn:
        if await conn.fetchval("SELECT id FROM customers WHERE id = $1", customer_id) is None:
            raise PortalError(404, "CustomerNotFound", f"No customer {customer_id}.")
    try:
        outcome = await change_contact(
            staff_services(request),
            contact_id=body.contact_id,
            customer_id=customer_id,
            portal_payer=True,
            audit_repeated_designation=True,
            client=_staff_context(request),
        )
    except StaffActionRefused as exc:
        raise _refused(exc) from None
    assert outcome.designation_event_id is not None
    async with deps.pool.acquire() as conn:
        view = await _contacts_view(conn, customer_id)
    return DesignationView(
        **view.model_dump(),
        previous_payer_contact_id=outcome.previous_designated_contact_id,
        audit_event_id=outcome.designation_event_id,
        **_consequences(outcome),
    )


@router.patch("/contacts/{contact_id}", summary="Change a contact's email or phone (audited CONTACT_CHANGED)")
async def patch_contact(
    contact_id: str, body: ContactPatchBody, request: Request, deps: Deps
) -> ContactChangeView:
    """Only the fields sent change; `null` clears one. On the payer, this cancels and revokes (SPEC §11)."""
    details = {name: getattr(body, name) for name in body.model_fields_set}
    try:
        outcome = await change_contact(
            staff_services(request), contact_id=contact_id, details=details, client=_staff_context(request)
        )
    except StaffActionRefused as exc:
        if exc.field is not None:
            raise RequestValidationError(
                [{"type": "value_error", "loc": ("body", exc.field), "msg": exc.message}]
            ) from None
        raise _refused(exc) from None
    async with deps.pool.acquire() as conn:
        view = await _contacts_view(conn, outcome.customer_id)
    return ContactChangeView(
        **view.model_dump(),
        contact_id=contact_id,
        audit_event_id=outcome.contact_event_id,
        **_consequences(outcome),
    )


@router.post(
    "/invoices/{invoice_id}/payment-requests",
    summary="Make a Pay Your Invoice link and send it to the Customer Portal Payer",
)
async def create_payment_request(invoice_id: str, request: Request, deps: Deps) -> PaymentRequestView:
    return await send_payment_request(request, deps, invoice_id, _staff_context(request))


async def send_payment_request(
    request: Request,
    deps: PortalDeps,
    invoice_id: str,
    client: ClientContext,
    *,
    channels: Sequence[Channel] | None = None,
) -> PaymentRequestView:
    """One path for the staff API, the console and /api/v1. A new link never revokes earlier ones
    (SPEC §11). `channels` limits where the link may go (default: email, else SMS)."""
    invoice = await fetch_standing(deps.pool, invoice_id)
    if invoice is None:
        raise PortalError(404, "InvoiceNotFound", f"No invoice {invoice_id}.")
    if invoice.status == INVOICE_VOID_STATUS:
        raise PortalError(
            409, str(RefusalType.INVOICE_VOID), "This invoice was voided.", reason=INVOICE_VOID_REASON
        )
    if invoice.settled:
        raise PortalError(
            409, RefusalType.INVOICE_ALREADY_PAID, "This invoice is already paid.", status=PaymentStatus.PAID
        )
    payer = await fetch_payer(deps.pool, invoice.customer_id)  # the one payer rule
    if payer is None:
        raise PortalError(409, "NoPayerContact", "The customer has no payer or primary contact.")

    token = deps.signer.issue(invoice_id)
    claims = deps.signer.verify(token)
    url = pay_link_url(deps.settings, token)
    # Email is the channel for links (SPEC §4); a payer with only a phone gets it by text instead.
    offered = channels_on_file(payer.email, payer.phone)
    usable = [c for c in offered if channels is None or c in channels]
    channel = Channel.EMAIL if Channel.EMAIL in usable else (usable[0] if usable else None)
    delivery = DeliveryView(sent=False, problem=NO_CONTACT_PROBLEM)
    request_key = f"payreq:{invoice_id}:{claims.nonce}"
    if channel is not None:
        to = (payer.email if channel is Channel.EMAIL else payer.phone) or ""
        destination = mask_destination(channel, to)
        message = compose_pay_link_message(
            channel,
            to,
            url=url,
            invoice_number=invoice.number,
            amount=format_amount(invoice.balance_cents, invoice.currency),
            company=deps.settings.company_name,
            key=request_key,
        )
        sender = deps.link_sender
        if channel is Channel.SMS:
            sender = staff_services(request).senders.get(Channel.SMS, deps.link_sender)
        try:
            receipt = await sender.send(message)
            delivery = DeliveryView(
                sent=True,
                channel=channel,
                destination=destination,
                provider=receipt.provider,
                message_id=receipt.message_id,
            )
        except DeliveryError as exc:
            delivery = DeliveryView(
                sent=False, channel=channel, destination=destination, provider=exc.provider, problem=str(exc)
            )
    details: dict[str, Any] = {
        "sent": delivery.sent,
        "link_expires_at": claims.expires_at.isoformat(),
        "link_nonce": claims.nonce,
    }
    if delivery.problem:
        details["problem"] = delivery.problem
    async with deps.pool.acquire() as conn, conn.transaction():
        external = await conn.fetchrow(
            "SELECT i.external_id AS invoice, c.external_id AS customer FROM invoices i"
            " JOIN customers c ON c.id = i.customer_id WHERE i.id = $1",
            invoice_id,
        )
        await record_event(
            conn,
            EventType.PAYMENT_REQUEST_SENT,
            {
                "object": "payment_request",
                "invoice": {"id": invoice_id, "external_id": external["invoice"] if external else None},
                "customer": {
                    "id": invoice.customer_id,
                    "external_id": external["customer"] if external else None,
                },
                "payer": {"id": payer.contact_id, "name": payer.name},
                "sent": delivery.sent,
                "channel": delivery.channel,
                "sent_to": delivery.destination,  # masked
                "expires_at": claims.expires_at.isoformat(),
            },
        )
        await append_event(
            conn,
            key=deps.audit_key,
            event=AuditEventInput(
                event_key=request_key,
                event_type=AuditEventType.PAYMENT_REQUEST_SENT,
                invoice_id=invoice_id,
                customer_id=invoice.customer_id,
                payer_contact_id=payer.contact_id,
                channel=delivery.channel,
                destination=delivery.destination,
                client=client,
                details=details,
                occurred_at=datetime.now(UTC),
            ),
        )
    return PaymentRequestView(
        invoice_id=invoice_id,
        invoice_number=invoice.number,
        url=url,
        expires_at=claims.expires_at,
        recipient=RecipientView(
            contact_id=payer.contact_id, name=payer.name, portal_payer=payer.designated, channels=offered
        ),
        delivery=delivery,
    )


@router.get("/invoices/{invoice_id}/audit", summary="The invoice's audit trail, oldest first, with chain_ok")
async def audit_trail(invoice_id: str, deps: Deps) -> AuditTrailView:
    if await deps.pool.fetchval("SELECT id FROM invoices WHERE id = $1", invoice_id) is None:
        raise PortalError(404, "InvoiceNotFound", f"No invoice {invoice_id}.")
    events = await fetch_trail(deps.pool, invoice_id)
    return AuditTrailView(
        invoice_id=invoice_id,
        chain_ok=await chain_ok(deps.pool, invoice_id, key=deps.audit_key),
        events=events,
    )
