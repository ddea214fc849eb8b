"""Appending to and reading the hash-chained audit trail.

Used by the audit activity and by the staff API (payer designation). Appends are idempotent by
`event_key`, and serialised per chain with an advisory lock so two writers never fork a chain.
"""

import json
from typing import Any

import asyncpg

from domain.activity_io import AuditEventInput, AuditEventRecord
from domain.audit import GENESIS_HASH, compute_event_hash, verify_chain

_COLUMNS = (
    "id, event_key, chain_id, event_type, invoice_id, customer_id, payer_contact_id, workflow_id, run_id,"
    " channel, destination, actor, ip, user_agent, details, occurred_at, recorded_at, prev_hash, hash"
)


STAFF_CONSOLE_CHAIN = "staff-console"


def chain_id_for(event: AuditEventInput) -> str:
    """One chain per invoice; events with no invoice (payer designation) chain per customer."""
    if event.invoice_id:
        return f"invoice:{event.invoice_id}"
    if event.customer_id:
        return f"customer:{event.customer_id}"
    return STAFF_CONSOLE_CHAIN  # staff sign-ins belong to no customer


async def append_event(conn: asyncpg.Connection, event: AuditEventInput, *, key: bytes) -> AuditEventRecord:
    """Append `event` to its chain, or answer the row already there with its `event_key`.

    Inside a caller's transaction this adds no savepoint of its own (an error here aborts the
    caller's transaction, as a failed statement would); on its own it runs in one. Three round
    trips: the chain's lock, then one read of the key and the chain's head, then the insert."""
    if conn.is_in_transaction():
        return await _append_locked(conn, event, key=key)
    async with conn.transaction():
        return await _append_locked(conn, event, key=key)


async def _append_locked(conn: asyncpg.Connection, event: AuditEventInput, *, key: bytes) -> AuditEventRecord:
    chain_id = chain_id_for(event)
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", chain_id)
    # After the lock, in a statement of its own, so both reads see every append before ours.
    found = await conn.fetchrow(
        "SELECT (SELECT id FROM audit_events WHERE event_key = $1) AS existing_id,"
        " (SELECT hash FROM audit_events WHERE event_key = $1) AS existing_hash,"
        " (SELECT hash FROM audit_events WHERE chain_id = $2 ORDER BY id DESC LIMIT 1) AS prev_hash",
        event.event_key,
        chain_id,
    )
    if found["existing_id"] is not None:
        return AuditEventRecord(id=found["existing_id"], hash=found["existing_hash"])
    prev_hash = found["prev_hash"] or GENESIS_HASH
    fields: dict[str, Any] = {
        "event_key": event.event_key,
        "event_type": event.event_type.value,
        "invoice_id": event.invoice_id,
        "customer_id": event.customer_id,
        "payer_contact_id": event.payer_contact_id,
        "workflow_id": event.workflow_id,
        "run_id": event.run_id,
        "channel": event.channel.value if event.channel else None,
        "destination": event.destination,
        "actor": event.client.actor,
        "ip": event.client.ip,
        "user_agent": event.client.user_agent,
        # Round-trip through JSON so the hashed form equals what jsonb hands back.
        "details": json.loads(json.dumps(event.details, default=str)),
        "occurred_at": event.occurred_at,
    }
    digest = compute_event_hash(prev_hash, fields, key=key)
    row = await conn.fetchrow(
        "INSERT INTO audit_events (event_key, chain_id, event_type, invoice_id, customer_id,"
        " payer_contact_id, workflow_id, run_id, channel, destination, actor, ip, user_agent, details,"
        " occurred_at, prev_hash, hash)"
        " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14::jsonb,$15,$16,$17) RETURNING id",
        fields["event_key"],
        chain_id,
        fields["event_type"],
        fields["invoice_id"],
        fields["customer_id"],
        fields["payer_contact_id"],
        fields["workflow_id"],
        fields["run_id"],
        fields["channel"],
        fields["destination"],
        fields["actor"],
        fields["ip"],
        fields["user_agent"],
        json.dumps(fields["details"]),
        fields["occurred_at"],
        prev_hash,
        digest,
    )
    return AuditEventRecord(id=row["id"], hash=digest)


def _row_to_dict(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    if isinstance(out.get("details"), str):
        out["details"] = json.loads(out["details"])
    return out


async def fetch_chain(pool: asyncpg.Pool, chain_id: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(f"SELECT {_COLUMNS} FROM audit_events WHERE chain_id = $1 ORDER BY id", chain_id)
    return [_row_to_dict(r) for r in rows]


async def fetch_trail(pool: asyncpg.Pool, invoice_id: str) -> list[dict[str, Any]]:
    """The invoice's audit trail, oldest first."""
    return await fetch_chain(pool, f"invoice:{invoice_id}")


async def chain_ok(pool: asyncpg.Pool, invoice_id: str, *, key: bytes) -> bool:
    return verify_chain(await fetch_trail(pool, invoice_id), key=key)
