"""Who pays for a customer: the designated Customer Portal Payer, else the primary contact (SPEC §1).

The one payer rule, as SQL, for the worker's resolution, the send-time check and the staff views.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

import asyncpg

# A pool or a connection inside a caller's transaction.
Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection

# The designated payer wins; the primary contact stands in when none is marked.
PAYER_SQL = (
    "SELECT id, name, email, phone, portal_payer, updated_at FROM contacts WHERE customer_id = $1"
    " AND (portal_payer OR is_primary) ORDER BY portal_payer DESC LIMIT 1"
)


@dataclass(frozen=True)
class PayerContact:
    contact_id: str
    name: str
    email: str | None
    phone: str | None
    designated: bool
    # Bumped by the database on every change of email, phone or designation (migration 0003).
    version: datetime


async def fetch_payer(db: Executor, customer_id: str) -> PayerContact | None:
    row = await db.fetchrow(PAYER_SQL, customer_id)
    if row is None:
        return None
    return PayerContact(
        contact_id=row["id"],
        name=row["name"],
        email=row["email"],
        phone=row["phone"],
        designated=bool(row["portal_payer"]),
        version=row["updated_at"],
    )


async def recent_failed_checks(db: Executor, invoice_id: str, window_seconds: int) -> int:
    """Wrong codes for the invoice inside the lockout window since its last good one, any attempt."""
    count = await db.fetchval(
        "SELECT count(*) FROM otp_checks WHERE invoice_id = $1 AND NOT ok"
        " AND checked_at > now() - make_interval(secs => $2)"
        " AND checked_at > COALESCE((SELECT max(checked_at) FROM otp_checks"
        "   WHERE invoice_id = $1 AND ok), '-infinity')",
        invoice_id,
        float(window_seconds),
    )
    return int(count)
