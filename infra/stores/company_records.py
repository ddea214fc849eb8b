"""Customers, contacts and invoices as the company's own systems address them (SPEC §12): by
`external_id`. SQL only; the rules (what a change may do, what it cancels) live in
`starters/company_records.py`, shared by /api/v1 and the CSV import.

The `*_object` functions build what the API answers and what events carry: external ids, amounts,
status; a contact's email and phone masked in events (`masked=True`), never a code or a token.
"""

import secrets
from datetime import date
from typing import Any, TypeAlias

import asyncpg

from domain.channels import Channel, mask_destination

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
# A debit the processor may still take: an invoice with one keeps its amount and customer.
OPEN_DEBIT_STATUSES = ("submitting", "accepted", "processing")


def new_id(prefix: str) -> str:
    return prefix + "_" + "".join(secrets.choice(_ALPHABET) for _ in range(20))


# --- customers -----------------------------------------------------------------------------------


async def customer_by_external(
    db: Executor, external_id: str, *, for_update: bool = False
) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    row: asyncpg.Record | None = await db.fetchrow(
        f"SELECT id, external_id, name, created_at, updated_at FROM customers WHERE external_id = $1{lock}",
        external_id,
    )
    return row


async def customers_by_external(
    db: Executor, external_ids: list[str], *, for_update: bool = False
) -> list[asyncpg.Record]:
    lock = " FOR UPDATE" if for_update else ""
    rows: list[asyncpg.Record] = await db.fetch(
        "SELECT id, external_id, name, created_at, updated_at FROM customers"
        f" WHERE external_id = ANY($1::text[]) ORDER BY external_id{lock}",
        external_ids,
    )
    return rows


async def insert_customer(conn: asyncpg.Connection, external_id: str, name: str) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        "INSERT INTO customers (id, external_id, name) VALUES ($1, $2, $3)"
        " RETURNING id, external_id, name, created_at, updated_at",
        new_id("cus"),
        external_id,
        name,
    )
    return row


async def rename_customer(conn: asyncpg.Connection, customer_id: str, name: str) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        "UPDATE customers SET name = $2, updated_at = now() WHERE id = $1"
        " RETURNING id, external_id, name, created_at, updated_at",
        customer_id,
        name,
    )
    return row


def customer_object(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "object": "customer",
        "id": row["id"],
        "external_id": row["external_id"],
        "name": row["name"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


# --- contacts ------------------------------------------------------------------------------------

_CONTACT_COLUMNS = (
    "ct.id, ct.external_id, ct.customer_id, c.external_id AS customer_external_id, ct.name, ct.email,"
    " ct.phone, ct.is_primary, ct.portal_payer, ct.updated_at"
)


async def contact_by_external(db: Executor, customer_id: str, external_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await db.fetchrow(
        f"SELECT {_CONTACT_COLUMNS} FROM contacts ct JOIN customers c ON c.id = ct.customer_id"
        " WHERE ct.customer_id = $1 AND ct.external_id = $2",
        customer_id,
        external_id,
    )
    return row


async def contact_by_id(db: Executor, contact_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await db.fetchrow(
        f"SELECT {_CONTACT_COLUMNS} FROM contacts ct JOIN customers c ON c.id = ct.customer_id WHERE ct.id = $1",
        contact_id,
    )
    return row


async def insert_contact(
    conn: asyncpg.Connection,
    *,
    customer_id: str,
    external_id: str,
    name: str,
    email: str | None,
    phone: str | None,
) -> str:
    """A new contact, neither primary nor payer: those marks change who pays, so they go through
    the staff change path (SPEC §11) after this."""
    contact_id = new_id("ct")
    await conn.execute(
        "INSERT INTO contacts (id, customer_id, external_id, name, email, phone) VALUES ($1, $2, $3, $4, $5, $6)",
        contact_id,
        customer_id,
        external_id,
        name,
        email,
        phone,
    )
    return contact_id


async def rename_contact(conn: asyncpg.Connection, contact_id: str, name: str) -> None:
    await conn.execute("UPDATE contacts SET name = $2, updated_at = now() WHERE id = $1", contact_id, name)


async def set_primary(conn: asyncpg.Connection, customer_id: str, contact_id: str | None) -> None:
    """Make `contact_id` the primary contact (None: nobody); the old one is unmarked first."""
    await conn.execute(
        "UPDATE contacts SET is_primary = false, updated_at = now()"
        " WHERE customer_id = $1 AND is_primary AND id IS DISTINCT FROM $2",
        customer_id,
        contact_id,
    )
    if contact_id is not None:
        await conn.execute(
            "UPDATE contacts SET is_primary = true, updated_at = now() WHERE id = $1 AND NOT is_primary",
            contact_id,
        )


def contact_object(row: asyncpg.Record, *, masked: bool) -> dict[str, Any]:
    email, phone = row["email"], row["phone"]
    if masked:
        email = mask_destination(Channel.EMAIL, email) if email else None
        phone = mask_destination(Channel.SMS, phone) if phone else None
    return {
        "object": "contact",
        "id": row["id"],
        "external_id": row["external_id"],
        "customer": {"id": row["customer_id"], "external_id": row["customer_external_id"]},
        "name": row["name"],
        "email": email,
        "phone": phone,
        "primary": row["is_primary"],
        "portal_payer": row["portal_payer"],
        "updated_at": row["updated_at"],
    }


# --- invoices ------------------------------------------------------------------------------------

_INVOICE_COLUMNS = (
    "i.id, i.external_id, i.number, i.kind, i.amount_cents, i.balance_cents, i.currency, i.status,"
    " i.due_date, i.created_at, i.updated_at, i.customer_id, c.external_id AS customer_external_id"
)


async def invoice_by_external(
    db: Executor, external_id: str, *, for_update: bool = False
) -> asyncpg.Record | None:
    lock = " FOR UPDATE OF i" if for_update else ""
    row: asyncpg.Record | None = await db.fetchrow(
        f"SELECT {_INVOICE_COLUMNS} FROM invoices i JOIN customers c ON c.id = i.customer_id"
        f" WHERE i.external_id = $1{lock}",
        external_id,
    )
    return row


async def invoice_by_id(db: Executor, invoice_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await db.fetchrow(
        f"SELECT {_INVOICE_COLUMNS} FROM invoices i JOIN customers c ON c.id = i.customer_id WHERE i.id = $1",
        invoice_id,
    )
    return row


async def number_taken(db: Executor, number: str, except_invoice_id: str | None) -> bool:
    found = await db.fetchval(
        "SELECT 1 FROM invoices WHERE number = $1 AND id IS DISTINCT FROM $2", number, except_invoice_id
    )
    return found is not None


async def insert_invoice(
    conn: asyncpg.Connection,
    *,
    external_id: str,
    customer_id: str,
    number: str,
    kind: str,
    amount_cents: int,
    currency: str,
    due_date: date | None,
) -> str:
    invoice_id = new_id("inv")
    await conn.execute(
        "INSERT INTO invoices (id, external_id, number, customer_id, kind, amount_cents, balance_cents,"
        " currency, due_date) VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8)",
        invoice_id,
        external_id,
        number,
        customer_id,
        kind,
        amount_cents,
        currency,
        due_date,
    )
    return invoice_id


async def update_invoice(
    conn: asyncpg.Connection,
    invoice_id: str,
    *,
    customer_id: str,
    number: str,
    kind: str,
    amount_cents: int,
    currency: str,
    due_date: date | None,
) -> None:
    """Nothing is paid on an invoice this may change, so its balance is its (new) amount."""
    await conn.execute(
        "UPDATE invoices SET customer_id = $2, number = $3, kind = $4, amount_cents = $5,"
        " balance_cents = CASE WHEN status = 'open' THEN $5 ELSE balance_cents END,"
        " currency = $6, due_date = $7, updated_at = now() WHERE id = $1",
        invoice_id,
        customer_id,
        number,
        kind,
        amount_cents,
        currency,
        due_date,
    )


async def mark_void(conn: asyncpg.Connection, invoice_id: str) -> None:
    await conn.execute("UPDATE invoices SET status = 'void', updated_at = now() WHERE id = $1", invoice_id)


async def has_open_debit(db: Executor, invoice_id: str) -> bool:
    found = await db.fetchval(
        "SELECT 1 FROM payments WHERE invoice_id = $1 AND status = ANY($2::text[]) LIMIT 1",
        invoice_id,
        list(OPEN_DEBIT_STATUSES),
    )
    return found is not None


def invoice_object(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "object": "invoice",
        "id": row["id"],
        "external_id": row["external_id"],
        "number": row["number"],
        "kind": row["kind"],
        "amount_cents": row["amount_cents"],
        "balance_cents": row["balance_cents"],
        "currency": row["currency"],
        "status": row["status"],
        "due_date": row["due_date"],
        "customer": {"id": row["customer_id"], "external_id": row["customer_external_id"]},
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
