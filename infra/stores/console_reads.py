"""What the staff console reads (SPEC §10): customers, invoices, payments, and what needs attention.

Lists come from PostgreSQL, never from fanned-out workflow queries. An invoice's payments, with
their status history, are `infra/stores/payment_records.py`'s (the staff API reads the same).
"""

from typing import Any

import asyncpg

UNSETTLED_PAYMENT_STATUSES = ("declined", "failed", "returned")
# Tables the payment lifecycle may add; the attention page lists whichever exists.
BLOCKED_ACCOUNT_TABLES = ("blocked_bank_accounts", "bank_account_blocks")


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search_customers(pool: asyncpg.Pool, query: str, *, limit: int = 50) -> list[dict[str, Any]]:
    """Customers whose name or one of whose invoice numbers contains `query`, with open invoices."""
    rows = await pool.fetch(
        "SELECT c.id, c.name FROM customers c"
        " WHERE $1 = '' OR c.name ILIKE $2 OR c.id ILIKE $2"
        " OR EXISTS (SELECT 1 FROM invoices i WHERE i.customer_id = c.id AND i.number ILIKE $2)"
        " ORDER BY c.name, c.id LIMIT $3",
        query,
        _like_pattern(query),
        limit,
    )
    ids = [r["id"] for r in rows]
    invoices = await pool.fetch(
        "SELECT id, number, customer_id, kind, balance_cents, currency, status FROM invoices"
        " WHERE customer_id = ANY($1::text[]) AND status <> 'paid' ORDER BY number",
        ids,
    )
    by_customer: dict[str, list[dict[str, Any]]] = {}
    for inv in invoices:
        by_customer.setdefault(inv["customer_id"], []).append(dict(inv))
    return [{"id": r["id"], "name": r["name"], "open_invoices": by_customer.get(r["id"], [])} for r in rows]


async def customer(pool: asyncpg.Pool, customer_id: str) -> dict[str, Any] | None:
    row = await pool.fetchrow("SELECT id, name FROM customers WHERE id = $1", customer_id)
    return dict(row) if row is not None else None


async def customer_invoices(pool: asyncpg.Pool, customer_id: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT id, number, kind, balance_cents, amount_cents, currency, status FROM invoices"
        " WHERE customer_id = $1 ORDER BY number",
        customer_id,
    )
    return [dict(r) for r in rows]


async def invoice(pool: asyncpg.Pool, invoice_id: str) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        "SELECT i.id, i.number, i.kind, i.amount_cents, i.balance_cents, i.currency, i.status,"
        " i.locked_until, i.customer_id, c.name AS customer_name"
        " FROM invoices i JOIN customers c ON c.id = i.customer_id WHERE i.id = $1",
        invoice_id,
    )
    return dict(row) if row is not None else None


async def payments_needing_attention(pool: asyncpg.Pool, *, limit: int = 100) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT p.*, i.number AS invoice_number FROM payments p JOIN invoices i ON i.id = p.invoice_id"
        " WHERE p.status = ANY($1::text[]) ORDER BY p.created_at DESC LIMIT $2",
        list(UNSETTLED_PAYMENT_STATUSES),
        limit,
    )
    return [dict(r) for r in rows]


async def blocked_bank_accounts(pool: asyncpg.Pool, *, limit: int = 100) -> list[dict[str, Any]]:
    for table in BLOCKED_ACCOUNT_TABLES:
        if await pool.fetchval("SELECT to_regclass($1) IS NOT NULL", f"public.{table}"):
            rows = await pool.fetch(f"SELECT * FROM {table} LIMIT $1", limit)  # name from the fixed list
            return [dict(r) for r in rows]
    return []


async def recent_locks(pool: asyncpg.Pool, *, days: int = 7, limit: int = 100) -> list[dict[str, Any]]:
    """Invoices locked by wrong codes lately (`attempt.locked` events), newest first: a lock a
    forwarded link may have caused, for staff to look at (issue 21)."""
    rows = await pool.fetch(
        "SELECT e.created_at, e.data->'object'->>'invoice_id' AS invoice_id,"
        " e.data->'object'->>'locked_until' AS locked_until,"
        " e.data->'object'->>'failed_checks' AS failed_checks, i.number AS invoice_number"
        " FROM events e LEFT JOIN invoices i ON i.id = e.data->'object'->>'invoice_id'"
        " WHERE e.type = 'attempt.locked' AND e.created_at > now() - make_interval(days => $1)"
        " ORDER BY e.seq DESC LIMIT $2",
        days,
        limit,
    )
    return [dict(r) for r in rows]
