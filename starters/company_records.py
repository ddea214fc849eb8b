"""Upserting the company's customers, contacts and invoices (SPEC §12): one set of rules for
/api/v1 and the CSV import (`portalpay import`, `/staff/import`).

Each upsert is keyed by the company's `external_id` and answers created / updated / unchanged;
`dry_run=True` checks everything and answers the same without writing (the import's preview). A
change writes its audit row and its event (`invoice.created`, …) in the same transaction as the
change itself; what talks to Temporal (cancelling a running attempt) follows the commit.

A contact's email, phone, primary or payer mark changes through `change_contact`, the path the
console takes, so SPEC §11 holds whoever makes the change: running attempts cancelled, earlier
links revoked, both addresses told, audited.
"""

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg
from temporalio.service import RPCError

from domain.activity_io import AuditEventInput
from domain.attempt import CancelInput, ClientContext
from domain.audit import AuditEventType
from domain.company_records import ContactFields, CustomerFields, InvoiceFields
from domain.events import EventType
from domain.invoice_standing import INVOICE_VOID_STATUS
from infra.stores import company_records as records
from infra.stores.audit_trail import append_event
from infra.stores.events import record_event
from starters.staff_changes.actions import StaffActionRefused, StaffServices, change_contact, clean_details
from starters.workflow_client import AttemptNotFound, AttemptRefused

log = logging.getLogger(__name__)

Status = Literal["created", "updated", "unchanged"]
AMOUNT_CHANGED_REASON = "invoice changed by the company"
VOIDED_REASON = "invoice voided by the company"


# Nothing was written; `field` names the input at fault (the API's `param`, the CSV's column). The
# same refusal as the staff actions' (a contact change goes through `change_contact`), so one type.
RecordRefused = StaffActionRefused


@dataclass
class Upserted:
    status: Status
    id: str | None  # None only for a dry run's "created"
    problems: list[str] = field(default_factory=list)  # what could not be done after the commit


@contextlib.asynccontextmanager
async def _connection(
    pool: asyncpg.Pool, conn: asyncpg.Connection | None
) -> AsyncIterator[asyncpg.Connection]:
    if conn is not None:
        yield conn
        return
    async with pool.acquire() as acquired:
        yield acquired


async def _serialise(conn: asyncpg.Connection, what: str, external_id: str) -> None:
    """Two writers of one external id take turns (a concurrent first PUT must not insert twice)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"{what}:{external_id}")


async def _audit(
    conn: asyncpg.Connection,
    services: StaffServices,
    event_type: AuditEventType,
    client: ClientContext,
    *,
    invoice_id: str | None,
    customer_id: str | None,
    details: dict[str, Any],
) -> None:
    await append_event(
        conn,
        key=services.settings.audit_key(),
        event=AuditEventInput(
            event_key=f"{event_type.value.lower()}:{invoice_id or customer_id}:{uuid.uuid4().hex}",
            event_type=event_type,
            invoice_id=invoice_id,
            customer_id=customer_id,
            payer_contact_id=None,
            client=client,
            details=details,
            occurred_at=datetime.now(UTC),
        ),
    )


# --- customers -----------------------------------------------------------------------------------


async def lock_customers(conn: asyncpg.Connection, external_ids: Iterable[str]) -> dict[str, asyncpg.Record]:
    """For a caller's transaction that upserts many customers (the CSV import's batches): take each
    one's writer lock as `upsert_customer` does, in one fixed order, and answer those that exist,
    locked FOR UPDATE, by external id. Two round trips for the lot, instead of two a row."""
    assert conn.is_in_transaction(), "the locks are held until the caller's transaction ends"
    ids = sorted(set(external_ids))
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext(k))"
        " FROM (SELECT 'customer:' || x AS k FROM unnest($1::text[]) AS x ORDER BY x) AS keys",
        ids,
    )
    rows = await records.customers_by_external(conn, ids, for_update=True)
    return {row["external_id"]: row for row in rows}


async def upsert_customer(
    services: StaffServices,
    fields: CustomerFields,
    client: ClientContext,
    *,
    dry_run: bool = False,
    conn: asyncpg.Connection | None = None,
    locked: dict[str, asyncpg.Record] | None = None,
) -> Upserted:
    """`locked`: what `lock_customers` answered in `conn`'s transaction, which then holds the lock
    and the row (kept current here); the change is part of that transaction."""
    if locked is not None:
        assert conn is not None and conn.is_in_transaction()
        return await _upsert_customer(conn, services, fields, client, locked, dry_run=dry_run)
    async with _connection(services.pool, conn) as c, c.transaction():
        await _serialise(c, "customer", fields.external_id)
        existing = await records.customer_by_external(c, fields.external_id, for_update=True)
        known = {} if existing is None else {fields.external_id: existing}
        return await _upsert_customer(c, services, fields, client, known, dry_run=dry_run)


async def _upsert_customer(
    c: asyncpg.Connection,
    services: StaffServices,
    fields: CustomerFields,
    client: ClientContext,
    locked: dict[str, asyncpg.Record],
    *,
    dry_run: bool,
) -> Upserted:
    existing = locked.get(fields.external_id)
    if existing is not None and existing["name"] == fields.name:
        return Upserted("unchanged", existing["id"])
    if dry_run:
        return Upserted("updated" if existing else "created", existing["id"] if existing else None)
    if existing is None:
        row = await records.insert_customer(c, fields.external_id, fields.name)
        changes: dict[str, Any] = {"created": True, "name": fields.name}
    else:
        row = await records.rename_customer(c, existing["id"], fields.name)
        changes = {"name": {"old": existing["name"], "new": fields.name}}
    locked[fields.external_id] = row
    await _audit(
        c,
        services,
        AuditEventType.CUSTOMER_CHANGED,
        client,
        invoice_id=None,
        customer_id=row["id"],
        details={"external_id": fields.external_id, "changes": changes},
    )
    return Upserted("created" if existing is None else "updated", row["id"])


async def customer_id_for(
    db: asyncpg.Pool | asyncpg.Connection, external_id: str, *, missing_status: int = 422
) -> str:
    """The customer a record names: 404 when the URL names it, 422 (a field at fault) in a body."""
    row = await records.customer_by_external(db, external_id)
    if row is None:
        raise RecordRefused(
            missing_status,
            "CustomerNotFound",
            f"There is no customer with external_id {external_id}.",
            field="customer_external_id",
        )
    customer_id: str = row["id"]
    return customer_id


# --- contacts ------------------------------------------------------------------------------------


async def upsert_contact(
    services: StaffServices,
    fields: ContactFields,
    client: ClientContext,
    *,
    dry_run: bool = False,
    customer_in_path: bool = False,
) -> Upserted:
    details = clean_details(fields.details)
    customer_id = await customer_id_for(
        services.pool, fields.customer_external_id, missing_status=404 if customer_in_path else 422
    )
    existing = await records.contact_by_external(services.pool, customer_id, fields.external_id)
    if existing is None:
        if dry_run:
            return Upserted("created", None)
        async with services.pool.acquire() as conn, conn.transaction():
            await _serialise(conn, f"contact:{customer_id}", fields.external_id)
            again = await records.contact_by_external(conn, customer_id, fields.external_id)
            if again is None:
                contact_id = await records.insert_contact(
                    conn,
                    customer_id=customer_id,
                    external_id=fields.external_id,
                    name=fields.name,
                    email=details.get("email"),
                    phone=details.get("phone"),
                )
                row = await records.contact_by_id(conn, contact_id)
                assert row is not None
                await record_event(conn, EventType.CONTACT_UPDATED, records.contact_object(row, masked=True))
                masked = records.contact_object(row, masked=True)
                await _audit(
                    conn,
                    services,
                    AuditEventType.CONTACT_CHANGED,
                    client,
                    invoice_id=None,
                    customer_id=customer_id,
                    details={
                        "contact_name": fields.name,
                        "contact_id": contact_id,
                        "external_id": fields.external_id,
                        "created": True,
                        "changes": {
                            "email": {"old": None, "new": masked["email"]},
                            "phone": {"old": None, "new": masked["phone"]},
                        },
                    },
                )
                created = True
            else:
                created = False
        if not created:
            # Another writer created it a moment ago: this request is an update of that contact.
            return await upsert_contact(services, fields, client, customer_in_path=customer_in_path)
        problems: list[str] = []
        if fields.primary or fields.portal_payer:
            problems = await _change(services, contact_id, customer_id, fields, {}, client)
        return Upserted("created", contact_id, problems)
    changed = (
        existing["name"] != fields.name
        or any(existing[k] != v for k, v in details.items())
        or (fields.primary is not None and existing["is_primary"] != fields.primary)
        or (fields.portal_payer is not None and existing["portal_payer"] != fields.portal_payer)
    )
    if not changed:
        return Upserted("unchanged", existing["id"])
    if dry_run:
        return Upserted("updated", existing["id"])
    problems = await _change(services, existing["id"], customer_id, fields, details, client)
    return Upserted("updated", existing["id"], problems)


async def _change(
    services: StaffServices,
    contact_id: str,
    customer_id: str,
    fields: ContactFields,
    details: dict[str, str | None],
    client: ClientContext,
) -> list[str]:
    outcome = await change_contact(
        services,
        contact_id=contact_id,
        customer_id=customer_id,
        details=details,
        portal_payer=fields.portal_payer,
        name=fields.name,
        primary=fields.primary,
        client=client,
    )
    return list(outcome.problems)


# --- invoices ------------------------------------------------------------------------------------

_LOCKED_STATUSES = ("pending", "paid")


async def upsert_invoice(
    services: StaffServices,
    fields: InvoiceFields,
    client: ClientContext,
    *,
    dry_run: bool = False,
    conn: asyncpg.Connection | None = None,
    cancel_later: list[str] | None = None,
) -> Upserted:
    """SPEC §12: a `pending` or `paid` invoice refuses a change of amount or customer (409
    InvoiceLocked); changing the amount (or customer) of one with a running attempt cancels it.

    A caller whose transaction outlives this call (the import's batches) passes `cancel_later`:
    the invoice id lands there, to be cancelled once that transaction has committed."""
    cancel = False
    async with _connection(services.pool, conn) as c, c.transaction():
        await _serialise(c, "invoice", fields.external_id)
        customer_id = await customer_id_for(c, fields.customer_external_id)
        existing = await records.invoice_by_external(c, fields.external_id, for_update=True)
        if await records.number_taken(c, fields.number, existing["id"] if existing else None):
            raise RecordRefused(
                409, "InvoiceNumberTaken", f"Another invoice has the number {fields.number}.", field="number"
            )
        wanted: dict[str, Any] = {
            "customer_id": customer_id,
            "number": fields.number,
            "kind": fields.kind,
            "amount_cents": fields.amount_cents,
            "currency": fields.currency,
            "due_date": fields.due_date,
        }
        if existing is None:
            if dry_run:
                return Upserted("created", None)
            invoice_id = await records.insert_invoice(c, external_id=fields.external_id, **wanted)
            row = await records.invoice_by_id(c, invoice_id)
            assert row is not None
            obj = records.invoice_object(row)
            await _audit(
                c,
                services,
                AuditEventType.INVOICE_CREATED,
                client,
                invoice_id=invoice_id,
                customer_id=customer_id,
                details={"invoice": obj},
            )
            await record_event(c, EventType.INVOICE_CREATED, obj)
            return Upserted("created", invoice_id)
        changes = {
            name: {"old": existing[name], "new": value}
            for name, value in wanted.items()
            if existing[name] != value
        }
        if not changes:
            return Upserted("unchanged", existing["id"])
        if existing["status"] == INVOICE_VOID_STATUS:
            raise RecordRefused(409, "InvoiceVoid", "This invoice was voided and can no longer change.")
        money = {"amount_cents", "customer_id", "currency", "kind"} & changes.keys()
        if money:
            await _hold_debits(c, existing["id"])
        if money and (
            existing["status"] in _LOCKED_STATUSES or await records.has_open_debit(c, existing["id"])
        ):
            raise RecordRefused(
                409,
                "InvoiceLocked",
                f"The invoice is {existing['status']} (a debit was taken): its amount and customer cannot change.",
                field=sorted(money)[0] if "customer_id" not in money else "customer_external_id",
            )
        if dry_run:
            return Upserted("updated", existing["id"])
        await records.update_invoice(c, existing["id"], **wanted)
        row = await records.invoice_by_id(c, existing["id"])
        assert row is not None
        obj = records.invoice_object(row)
        await _audit(
            c,
            services,
            AuditEventType.INVOICE_UPDATED,
            client,
            invoice_id=existing["id"],
            customer_id=customer_id,
            details={"changes": changes, "invoice": obj},
        )
        await record_event(c, EventType.INVOICE_UPDATED, {**obj, "previous": _previous(changes)})
        cancel = bool(money)
    if cancel and cancel_later is not None:
        cancel_later.append(existing["id"])
        return Upserted("updated", existing["id"])
    problems = (
        await cancel_running_attempt(services, existing["id"], AMOUNT_CHANGED_REASON, client)
        if cancel
        else []
    )
    return Upserted("updated", existing["id"], problems)


def _previous(changes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {name: change["old"] for name, change in changes.items() if name != "customer_id"}


async def void_invoice(services: StaffServices, external_id: str, client: ClientContext) -> Upserted:
    """SPEC §12: status `void`; the running attempt is cancelled, links answer 410, no attempt can
    start (the may-open rule). A `pending` invoice (a debit processing) answers 409."""
    async with services.pool.acquire() as conn, conn.transaction():
        await _serialise(conn, "invoice", external_id)
        existing = await records.invoice_by_external(conn, external_id, for_update=True)
        if existing is None:
            raise RecordRefused(
                404, "InvoiceNotFound", f"There is no invoice with external_id {external_id}."
            )
        if existing["status"] == INVOICE_VOID_STATUS:
            return Upserted("unchanged", existing["id"])
        await _hold_debits(conn, existing["id"])
        if existing["status"] == "pending" or await records.has_open_debit(conn, existing["id"]):
            raise RecordRefused(
                409, "InvoicePending", "A debit for this invoice is processing: it cannot be voided."
            )
        if existing["status"] == "paid":
            raise RecordRefused(409, "InvoiceAlreadyPaid", "This invoice is paid: it cannot be voided.")
        await records.mark_void(conn, existing["id"])
        row = await records.invoice_by_id(conn, existing["id"])
        assert row is not None
        obj = records.invoice_object(row)
        await _audit(
            conn,
            services,
            AuditEventType.INVOICE_VOIDED,
            client,
            invoice_id=existing["id"],
            customer_id=existing["customer_id"],
            details={"external_id": external_id, "previous_status": existing["status"]},
        )
        await record_event(conn, EventType.INVOICE_VOIDED, obj)
    problems = await cancel_running_attempt(services, existing["id"], VOIDED_REASON, client)
    return Upserted("updated", existing["id"], problems)


async def _hold_debits(conn: asyncpg.Connection, invoice_id: str) -> None:
    """The lock the debit activity takes before it writes a payment row: until this transaction
    ends no debit of the invoice starts, so "no open debit" stays true while the change commits.
    (A debit the attempt submits after the commit, before the cancel reaches it, is the debit
    activity's to refuse: it should check the invoice's status and amount under this lock.)"""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('debit:' || $1))", invoice_id)


async def cancel_running_attempt(
    services: StaffServices, invoice_id: str, reason: str, client: ClientContext
) -> list[str]:
    """Cancel the invoice's running attempt, if any; what could not be done is reported."""
    try:
        await services.gateway.cancel(invoice_id, None, CancelInput(reason=reason, client=client))
    except AttemptNotFound:
        return []
    except AttemptRefused as refused:
        if refused.status is not None and refused.status.is_terminal:
            return []
        return [f"{invoice_id}: attempt not cancelled ({refused.message})"]
    except RPCError as err:
        log.warning("cancelling the attempt of %s failed: %s", invoice_id, err.status)
        return [f"{invoice_id}: Temporal did not answer; the attempt was not cancelled"]
    return []
