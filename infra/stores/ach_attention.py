"""What staff must see about bank-direct ACH (SPEC §13, /staff/attention): accounts a notice of
change marked as needing new details, trace numbers nobody knows, and files not uploaded."""

from typing import Any

import asyncpg


async def open_notices(pool: asyncpg.Pool, *, limit: int = 100) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT n.id, n.change_code, n.corrected_data_masked, n.trace_number, n.payment_id, n.account_last4,"
        " n.created_at, p.invoice_id FROM ach_notices n LEFT JOIN payments p ON p.id = n.payment_id"
        " WHERE n.resolved_at IS NULL ORDER BY n.created_at DESC LIMIT $1",
        limit,
    )
    return [dict(r) for r in rows]


async def unknown_traces(pool: asyncpg.Pool, *, limit: int = 100) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT u.trace_number, u.kind, u.code, u.created_at, f.name AS file_name FROM ach_unknown_traces u"
        " JOIN ach_inbound_files f ON f.id = u.inbound_file_id ORDER BY u.created_at DESC LIMIT $1",
        limit,
    )
    return [dict(r) for r in rows]


async def unsent_files(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT name, created_at, entry_count, status, upload_attempts, last_error FROM ach_files"
        " WHERE status <> 'uploaded' ORDER BY created_at"
    )
    return [dict(r) for r in rows]
