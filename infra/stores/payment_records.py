"""Payments as the portal and the staff API show them: the row plus when each status was reached.

One query shape for the customer's receipt and pay link (one payment) and for staff (every payment of
an invoice), so both read the same truth. The times come from `payment_status_history`, where each
status is reached once (SPEC §9); `expected_settlement_at` is what the processor answered when it
accepted the debit (`activities/payments.py` stores it).
"""

from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

import asyncpg

from domain.payment_notice import ACCEPTED_STATUSES

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection

_SELECT = (
    "SELECT p.id, p.invoice_id, p.status, p.amount_cents, p.currency, p.account_last4, p.return_code,"
    " p.decline_reason, p.submitted_at, p.expected_settlement_at,"
    " max(h.occurred_at) FILTER (WHERE h.status = 'settled') AS settled_at,"
    " max(h.occurred_at) FILTER (WHERE h.status = 'failed') AS failed_at,"
    " max(h.occurred_at) FILTER (WHERE h.status = 'returned') AS returned_at,"
    " max(h.occurred_at) FILTER (WHERE h.status = 'canceled') AS canceled_at"
    " FROM payments p LEFT JOIN payment_status_history h ON h.payment_id = p.id"
)
_GROUP = " GROUP BY p.id"


@dataclass(frozen=True)
class PaymentRecord:
    payment_id: str
    invoice_id: str
    status: str
    amount_cents: int
    currency: str
    account_last4: str
    return_code: str | None
    decline_reason: str | None
    submitted_at: datetime
    expected_settlement_at: datetime | None
    settled_at: datetime | None
    failed_at: datetime | None
    returned_at: datetime | None
    canceled_at: datetime | None

    @property
    def ended_at(self) -> datetime | None:
        """When it stopped being money on its way: failed, returned or canceled."""
        return self.returned_at or self.failed_at or self.canceled_at


def _record(row: asyncpg.Record) -> PaymentRecord:
    return PaymentRecord(
        payment_id=row["id"],
        invoice_id=row["invoice_id"],
        status=row["status"],
        amount_cents=row["amount_cents"],
        currency=row["currency"],
        account_last4=row["account_last4"],
        return_code=row["return_code"],
        decline_reason=row["decline_reason"],
        submitted_at=row["submitted_at"],
        expected_settlement_at=row["expected_settlement_at"],
        settled_at=row["settled_at"],
        failed_at=row["failed_at"],
        returned_at=row["returned_at"],
        canceled_at=row["canceled_at"],
    )


async def fetch_payment(db: Executor, payment_id: str) -> PaymentRecord | None:
    row = await db.fetchrow(f"{_SELECT} WHERE p.id = $1{_GROUP}", payment_id)
    return _record(row) if row is not None else None


async def latest_accepted_payment(db: Executor, invoice_id: str) -> PaymentRecord | None:
    """The invoice's newest debit the processor accepted, whatever became of it since."""
    row = await db.fetchrow(
        f"{_SELECT} WHERE p.invoice_id = $1 AND p.status = ANY($2::text[]){_GROUP}"
        " ORDER BY p.submitted_at DESC, p.id DESC LIMIT 1",
        invoice_id,
        list(ACCEPTED_STATUSES),
    )
    return _record(row) if row is not None else None


async def invoice_payments(db: Executor, invoice_id: str) -> list[PaymentRecord]:
    """Every payment of the invoice, oldest first (declined ones included: staff see those too)."""
    rows = await db.fetch(
        f"{_SELECT} WHERE p.invoice_id = $1{_GROUP} ORDER BY p.submitted_at, p.id", invoice_id
    )
    return [_record(r) for r in rows]
