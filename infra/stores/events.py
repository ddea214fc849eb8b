"""The events outbox (SPEC §12): one row per business fact, written on the caller's connection
inside the caller's transaction, so an event exists exactly when the change it reports does.

Every writer of a reported change calls `record_event` (or `record_payment_event`) on the same
connection, in the same transaction, as the change itself. The webhook relay and
`GET /api/v1/events` read what is here; nothing else writes it.
"""

import json
import secrets
from collections.abc import Mapping
from typing import Any

import asyncpg

from domain.ach_returns import return_code
from domain.events import PAYMENT_EVENT_FOR_STATUS, EventType

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def new_event_id() -> str:
    return "evt_" + "".join(secrets.choice(_ALPHABET) for _ in range(24))


async def record_event(conn: asyncpg.Connection, event_type: EventType, obj: Mapping[str, Any]) -> str:
    """Writes one event; call it inside the transaction that makes the change it reports."""
    event_id = new_event_id()
    await conn.execute(
        "INSERT INTO events (id, type, data) VALUES ($1, $2, $3::jsonb)",
        event_id,
        str(event_type),
        json.dumps({"object": dict(obj)}, default=str, sort_keys=True),
    )
    return event_id


async def payment_event_object(conn: asyncpg.Connection, payment_id: str) -> dict[str, Any]:
    """What an accounting connector needs to post a payment or reverse it; no full number."""
    row = await conn.fetchrow(
        "SELECT p.id, p.status, p.amount_cents, p.currency, p.account_last4, p.return_code,"
        "       p.processor_reference, p.submitted_at, p.status_changed_at,"
        "       i.id AS invoice_id, i.external_id AS invoice_external_id, i.number AS invoice_number,"
        "       c.id AS customer_id, c.external_id AS customer_external_id,"
        "       (SELECT occurred_at FROM payment_status_history h"
        "         WHERE h.payment_id = p.id AND h.status = 'settled') AS settled_at"
        "  FROM payments p JOIN invoices i ON i.id = p.invoice_id JOIN customers c ON c.id = i.customer_id"
        " WHERE p.id = $1",
        payment_id,
    )
    if row is None:
        raise LookupError(f"no payment {payment_id}")
    return {
        "object": "payment",
        "payment_id": row["id"],
        "status": row["status"],
        "amount_cents": row["amount_cents"],
        "currency": row["currency"],
        "account_last4": row["account_last4"],
        "return_code": row["return_code"],
        "return_code_meaning": return_code(row["return_code"]).meaning if row["return_code"] else None,
        "submitted_at": row["submitted_at"].isoformat() if row["submitted_at"] else None,
        "settled_at": row["settled_at"].isoformat() if row["settled_at"] else None,
        "invoice": {
            "id": row["invoice_id"],
            "external_id": row["invoice_external_id"],
            "number": row["invoice_number"],
        },
        "customer": {"id": row["customer_id"], "external_id": row["customer_external_id"]},
    }


async def record_payment_event(conn: asyncpg.Connection, payment_id: str, status: str) -> str | None:
    """The payment event for a status the payment has just reached, in the same transaction.

    Statuses no event reports (`submitting`, `accepted`, `declined`) write nothing."""
    event_type = PAYMENT_EVENT_FOR_STATUS.get(status)
    if event_type is None:
        return None
    return await record_event(conn, event_type, await payment_event_object(conn, payment_id))
