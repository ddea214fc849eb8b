"""SPEC §11: links issued before a payer change stop working.

One moment per customer (`customers.pay_links_revoked_before`, millisecond precision like the issue
time a link carries): a link of any of that customer's invoices issued before it is revoked. A
new payment request does not move it, so asking again never revokes earlier links.
"""

from datetime import datetime

import asyncpg


async def revoke_links_issued_before(
    conn: asyncpg.Connection, customer_id: str, moment: datetime
) -> datetime:
    """Revoke the customer's links issued before `moment`; returns the stored (truncated) moment."""
    stored: datetime = await conn.fetchval(
        "UPDATE customers SET pay_links_revoked_before ="
        " GREATEST(pay_links_revoked_before, date_trunc('milliseconds', $2::timestamptz))"
        " WHERE id = $1 RETURNING pay_links_revoked_before",
        customer_id,
        moment,
    )
    return stored


async def links_revoked_before(pool: asyncpg.Pool | asyncpg.Connection, invoice_id: str) -> datetime | None:
    """The revocation moment that applies to this invoice's links, if any."""
    moment: datetime | None = await pool.fetchval(
        "SELECT c.pay_links_revoked_before FROM invoices i JOIN customers c ON c.id = i.customer_id"
        " WHERE i.id = $1",
        invoice_id,
    )
    return moment
