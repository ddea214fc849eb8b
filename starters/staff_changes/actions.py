"""Staff changes to who pays and where codes go: one code path for the staff API and the console.

SPEC §11: a new Customer Portal Payer, or a changed email or phone on the payer contact, cancels
the running attempts of the customer's unpaid invoices, revokes the pay links issued before the
change, and tells the old and the new address. The change and its audit rows commit together;
cancelling and telling follow the commit (they talk to Temporal and to providers, which must
never hold a row lock), and what they could not do is reported, never hidden.
"""

import asyncio
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from fastapi import Request
from temporalio.service import RPCError

from domain.activity_io import AuditEventInput
from domain.attempt import CancelInput, ClientContext
from domain.audit import AuditEventType
from domain.channels import Channel, mask_destination
from domain.contact_details import (
    ContactDetailError,
    clean_contact_details,
    has_control_characters,
)
from domain.events import EventType
from infra.providers.delivery.base import CodeSender
from infra.settings import Settings
from infra.stores import company_records as records
from infra.stores import contact_records as store
from infra.stores.audit_trail import append_event
from infra.stores.events import record_event
from infra.stores.pay_link_revocations import revoke_links_issued_before
from starters.staff_changes.change_notices import tell_old_and_new_addresses
from starters.staff_changes.contact_change import ContactChangeOutcome
from starters.workflow_client import AttemptGateway, AttemptNotFound, AttemptRefused

log = logging.getLogger(__name__)

PAYER_CHANGED_REASON = "payer changed by staff"
PAYER_DETAILS_CHANGED_REASON = "payer contact details changed by staff"


@dataclass
class StaffServices:
    settings: Settings
    pool: asyncpg.Pool
    gateway: AttemptGateway
    senders: Mapping[Channel, CodeSender]


class StaffActionRefused(Exception):
    """The change was refused and nothing was written; `field` names the input at fault, if one."""

    def __init__(self, http_status: int, error: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.error = error
        self.message = message
        self.field = field


def _masked(channel: Channel, value: str | None) -> str | None:
    return mask_destination(channel, value) if value else None


def clean_details(details: Mapping[str, str | None]) -> dict[str, str | None]:
    """A contact's email and phone as stored, or the refusal naming the field at fault."""
    try:
        return clean_contact_details(details)
    except ContactDetailError as exc:
        raise StaffActionRefused(422, "InvalidInput", exc.message, field=exc.field) from None


async def change_contact(
    services: StaffServices,
    *,
    contact_id: str,
    client: ClientContext,
    customer_id: str | None = None,
    details: Mapping[str, str | None] | None = None,
    portal_payer: bool | None = None,
    audit_repeated_designation: bool = False,
    name: str | None = None,
    primary: bool | None = None,
) -> ContactChangeOutcome:
    """Change a contact's email/phone (keys present in `details`) and/or its payer mark.

    `portal_payer=True` marks it Customer Portal Payer (unmarking the old one), `False` unmarks it
    (the primary contact then pays), `None` leaves the mark alone. `primary` does the same for the
    primary mark (which decides who pays when nobody is designated) and `name` renames: the API's
    contact upsert (SPEC §12) comes through here too. `customer_id`, when given, must own the
    contact (the console's URL names both). Events (`contact.updated`, `payer.designated`) are
    written in the same transaction as the change.
    """
    if not contact_id or len(contact_id) > 200 or has_control_characters(contact_id):
        raise StaffActionRefused(404, "ContactNotFound", "There is no such contact.")
    cleaned = clean_details(details or {})
    now = datetime.now(UTC)
    change_id = uuid.uuid4().hex
    async with services.pool.acquire() as conn, conn.transaction():
        owner = await store.customer_of_contact(conn, contact_id)
        if owner is None or (customer_id is not None and owner != customer_id):
            where = f"Customer {customer_id} has" if customer_id else "There is"
            raise StaffActionRefused(404, "ContactNotFound", f"{where} no contact {contact_id}.")
        await store.lock_customer(conn, owner)
        before = await store.customer_contacts(conn, owner)
        contact = next(c for c in before if c.id == contact_id)
        payer_before = store.effective_payer(before)
        designated_before = next((c.id for c in before if c.portal_payer), None)
        outcome = ContactChangeOutcome(
            customer_id=owner,
            contact_id=contact_id,
            previous_designated_contact_id=designated_before,
            previous_payer_contact_id=payer_before.id if payer_before else None,
            payer_contact_id=payer_before.id if payer_before else None,
        )
        new_email = cleaned.get("email", contact.email)
        new_phone = cleaned.get("phone", contact.phone)
        outcome.changed_fields = [
            field_name
            for field_name, old, new in (
                ("email", contact.email, new_email),
                ("phone", contact.phone, new_phone),
            )
            if old != new
        ]
        renamed = name is not None and name != contact.name
        if renamed:
            assert name is not None
            await records.rename_contact(conn, contact_id, name)
        primary_target = _primary_target(before, contact_id, primary)
        primary_changed = primary_target is not _UNCHANGED
        if primary_changed:
            await records.set_primary(
                conn, owner, primary_target if isinstance(primary_target, str) else None
            )
        if outcome.changed_fields or renamed or primary_changed:
            if outcome.changed_fields:
                await store.update_contact_details(conn, contact_id, email=new_email, phone=new_phone)
            changed_row = await records.contact_by_id(conn, contact_id)
            assert changed_row is not None
            await record_event(
                conn, EventType.CONTACT_UPDATED, records.contact_object(changed_row, masked=True)
            )
        if outcome.changed_fields or renamed or primary_changed:
            record = await append_event(
                conn,
                key=services.settings.audit_key(),
                event=AuditEventInput(
                    event_key=f"contact-changed:{contact_id}:{change_id}",
                    event_type=AuditEventType.CONTACT_CHANGED,
                    invoice_id=None,
                    customer_id=owner,
                    payer_contact_id=contact_id,
                    client=client,
                    details={
                        "contact_name": contact.name,
                        "is_payer": payer_before is not None and payer_before.id == contact_id,
                        "changes": {
                            **{
                                field_name: {
                                    "old": _masked(channel, old),
                                    "new": _masked(channel, new),
                                }
                                for field_name, channel, old, new in (
                                    ("email", Channel.EMAIL, contact.email, new_email),
                                    ("phone", Channel.SMS, contact.phone, new_phone),
                                )
                                if old != new
                            },
                            **({"name": {"old": contact.name, "new": name}} if renamed else {}),
                            **(
                                {"primary": {"old": contact.is_primary, "new": not contact.is_primary}}
                                if primary_changed
                                else {}
                            ),
                        },
                    },
                    occurred_at=now,
                ),
            )
            outcome.contact_event_id = record.id

        target = designated_before
        if portal_payer is True:
            target = contact_id
        elif portal_payer is False and designated_before == contact_id:
            target = None
        if target != designated_before or (portal_payer is True and audit_repeated_designation):
            await store.set_portal_payer(conn, owner, target)
        after = await store.customer_contacts(conn, owner)
        payer_after = store.effective_payer(after)
        outcome.payer_contact_id = payer_after.id if payer_after else None
        if target != designated_before or (portal_payer is True and audit_repeated_designation):
            record = await append_event(
                conn,
                key=services.settings.audit_key(),
                event=AuditEventInput(
                    event_key=f"designate:{owner}:{target}:{change_id}",
                    event_type=AuditEventType.PORTAL_PAYER_DESIGNATED,
                    invoice_id=None,
                    customer_id=owner,
                    payer_contact_id=outcome.payer_contact_id,
                    client=client,
                    details={
                        "previous_payer_contact_id": designated_before,
                        "changed": target != designated_before,
                        "contact_name": payer_after.name if payer_after else None,
                        "unmarked_contact_id": designated_before if target is None else None,
                    },
                    occurred_at=now,
                ),
            )
            outcome.designation_event_id = record.id
            if target != designated_before:
                await record_event(
                    conn,
                    EventType.PAYER_DESIGNATED,
                    {
                        "object": "payer_designation",
                        "customer": {"id": owner, "external_id": await _customer_external_id(conn, owner)},
                        "contact": _contact_ref(after, target),
                        "previous_contact": _contact_ref(before, designated_before),
                        "payer": _contact_ref(after, outcome.payer_contact_id),
                    },
                )

        payer_details_changed = (
            payer_after is not None and payer_after.id == contact_id and bool(outcome.changed_fields)
        )
        if outcome.payer_changed or payer_details_changed:
            outcome.links_revoked_before = await revoke_links_issued_before(conn, owner, now)
            unpaid = await store.unpaid_invoice_ids(conn, owner)
            customer_name: str = await conn.fetchval("SELECT name FROM customers WHERE id = $1", owner)

    if outcome.links_revoked_before is None:
        return outcome
    reason = PAYER_CHANGED_REASON if outcome.payer_changed else PAYER_DETAILS_CHANGED_REASON
    await _cancel_running_attempts(services, unpaid, reason, client, outcome)
    await tell_old_and_new_addresses(
        services.settings.company_name,
        services.senders,
        outcome,
        customer_name,
        change_id,
        contact_before=contact,
        payer_before=payer_before,
        payer_after=payer_after,
    )
    return outcome


_UNCHANGED = object()


def _primary_target(before: list[store.ContactRecord], contact_id: str, primary: bool | None) -> object:
    """The contact to mark primary (None: nobody), or `_UNCHANGED`."""
    current = next((c.id for c in before if c.is_primary), None)
    if primary is True and current != contact_id:
        return contact_id
    if primary is False and current == contact_id:
        return None
    return _UNCHANGED


def _contact_ref(contacts: list[store.ContactRecord], contact_id: str | None) -> dict[str, Any] | None:
    """A contact in an event: who, never where (no email or phone)."""
    found = next((c for c in contacts if c.id == contact_id), None)
    if found is None:
        return None
    return {"id": found.id, "name": found.name}


async def _customer_external_id(conn: asyncpg.Connection, customer_id: str) -> str | None:
    value: str | None = await conn.fetchval("SELECT external_id FROM customers WHERE id = $1", customer_id)
    return value


async def _cancel_running_attempts(
    services: StaffServices,
    invoice_ids: list[str],
    reason: str,
    client: ClientContext,
    outcome: ContactChangeOutcome,
) -> None:
    async def cancel(invoice_id: str) -> None:
        try:
            await services.gateway.cancel(invoice_id, None, CancelInput(reason=reason, client=client))
        except AttemptNotFound:
            return  # never opened
        except AttemptRefused as refused:
            if refused.status is not None and refused.status.is_terminal:
                return  # already over
            # A debit in flight (SUBMITTING) is not abandoned; the send_code check covers codes.
            outcome.problems.append(f"{invoice_id}: attempt not cancelled ({refused.message})")
            return
        except RPCError as err:
            log.warning("cancelling the attempt of %s failed: %s", invoice_id, err.status)
            outcome.problems.append(f"{invoice_id}: Temporal did not answer; the attempt was not cancelled")
            return
        outcome.cancelled_invoice_ids.append(invoice_id)

    await asyncio.gather(*(cancel(i) for i in invoice_ids))
    outcome.cancelled_invoice_ids.sort()


def outcome_summary(outcome: ContactChangeOutcome) -> dict[str, Any]:
    return {
        "changed_fields": outcome.changed_fields,
        "previous_payer_contact_id": outcome.previous_designated_contact_id,
        "links_revoked_before": outcome.links_revoked_before,
        "cancelled_invoice_ids": outcome.cancelled_invoice_ids,
        "notified": outcome.notified,
        "problems": outcome.problems,
    }


def staff_services(request: Request) -> StaffServices:
    services: StaffServices = request.app.state.staff_services
    return services
