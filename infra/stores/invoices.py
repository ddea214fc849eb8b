"""Invoices as the portal, the CLI and the worker read them: one query, the one may-open rule."""

from datetime import datetime
from typing import TypeAlias

import asyncpg

from domain.invoice_standing import InvoiceStanding

# A pool or a connection inside a caller's transaction.
Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection


async def fetch_standing(db: Executor, invoice_id: str) -> InvoiceStanding | None:
    row = await db.fetchrow(
        "SELECT id, number, customer_id, kind, amount_cents, balance_cents, currency, status, locked_until"
        " FROM invoices WHERE id = $1",
        invoice_id,
    )
    if row is None:
        return None
    return InvoiceStanding(
        invoice_id=row["id"],
        number=row["number"],
        customer_id=row["customer_id"],
        kind=row["kind"],
        amount_cents=row["amount_cents"],
        balance_cents=row["balance_cents"],
        currency=row["currency"],
        status=row["status"],
        locked_until=row["locked_until"],
    )


async def extend_lockout(db: Executor, invoice_id: str, locked_until: datetime) -> bool:
    """Lock the invoice until `locked_until` unless it is already locked longer; True if it moved."""
    status = await db.execute(
        "UPDATE invoices SET locked_until = $2 WHERE id = $1 AND (locked_until IS NULL OR locked_until < $2)",
        invoice_id,
        locked_until,
    )
    return bool(status.endswith(" 1"))
