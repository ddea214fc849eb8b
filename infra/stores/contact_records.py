"""Contacts as staff change them: the customer's row lock, the contact rows, and who pays.

SQL only; the rules (what a change cancels, revokes and tells) live in `starters/staff_changes/actions.py`.
"""

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class ContactRecord:
    id: str
    customer_id: str
    name: str
    email: str | None
    phone: str | None
    is_primary: bool
    portal_payer: bool


def _record(row: asyncpg.Record) -> ContactRecord:
    return ContactRecord(
        id=row["id"],
        customer_id=row["customer_id"],
        name=row["name"],
        email=row["email"],
        phone=row["phone"],
        is_primary=row["is_primary"],
        portal_payer=row["portal_payer"],
    )


def effective_payer(contacts: list[ContactRecord]) -> ContactRecord | None:
    """SPEC §1: the designated Customer Portal Payer, else the primary contact."""
    return next((c for c in contacts if c.portal_payer), None) or next(
        (c for c in contacts if c.is_primary), None
    )


async def lock_customer(conn: asyncpg.Connection, customer_id: str) -> bool:
    """Serialises every change to one customer's contacts (inside the caller's transaction)."""
    found = await conn.fetchval("SELECT id FROM customers WHERE id = $1 FOR UPDATE", customer_id)
    return found is not None


async def customer_of_contact(conn: asyncpg.Connection, contact_id: str) -> str | None:
    customer_id: str | None = await conn.fetchval(
        "SELECT customer_id FROM contacts WHERE id = $1", contact_id
    )
    return customer_id


async def customer_contacts(conn: asyncpg.Connection | asyncpg.Pool, customer_id: str) -> list[ContactRecord]:
    rows = await conn.fetch(
        "SELECT id, customer_id, name, email, phone, is_primary, portal_payer FROM contacts"
        " WHERE customer_id = $1 ORDER BY portal_payer DESC, is_primary DESC, name, id",
        customer_id,
    )
    return [_record(r) for r in rows]


async def update_contact_details(
    conn: asyncpg.Connection, contact_id: str, *, email: str | None, phone: str | None
) -> None:
    await conn.execute(
        "UPDATE contacts SET email = $2, phone = $3, updated_at = now() WHERE id = $1",
        contact_id,
        email,
        phone,
    )


async def set_portal_payer(conn: asyncpg.Connection, customer_id: str, contact_id: str | None) -> None:
    """Mark `contact_id` (None: nobody, so the primary pays); unmarks the old one first."""
    await conn.execute(
        "UPDATE contacts SET portal_payer = false, updated_at = now()"
        " WHERE customer_id = $1 AND portal_payer AND id IS DISTINCT FROM $2",
        customer_id,
        contact_id,
    )
    if contact_id is not None:
        await conn.execute(
            "UPDATE contacts SET portal_payer = true, updated_at = now() WHERE id = $1 AND NOT portal_payer",
            contact_id,
        )


async def unpaid_invoice_ids(conn: asyncpg.Connection | asyncpg.Pool, customer_id: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT id FROM invoices WHERE customer_id = $1 AND status <> 'paid' ORDER BY id", customer_id
    )
    return [r["id"] for r in rows]
