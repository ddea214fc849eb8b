"""Reading what a proof of authorization is built from, and auditing each export (SPEC §9).

The payment lifecycle may add a status-history table; the proof reads it when it exists and
otherwise tells the payment's story from its audit rows and the row's current status.
"""

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from domain.activity_io import AuditEventInput
from domain.attempt import ClientContext
from domain.audit import AuditEventType
from domain.channels import Channel, channels_on_file, mask_destination
from domain.proof import ProofOfAuthorization
from domain.proof_story import build_proof
from infra.stores.audit_trail import append_event, fetch_chain, fetch_trail

# Candidate names of the lifecycle's history table, looked up with to_regclass (never interpolated
# from input).
STATUS_HISTORY_TABLES = ("payment_status_history", "payment_status_changes")


async def _status_rows(conn: asyncpg.Connection, payment_id: str) -> list[dict[str, Any]] | None:
    for table in STATUS_HISTORY_TABLES:
        if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table):
            rows = await conn.fetch(f"SELECT * FROM {table} WHERE payment_id = $1", payment_id)
            found = [dict(r) for r in rows]
            order = next(
                (
                    c
                    for c in ("occurred_at", "changed_at", "recorded_at", "created_at", "id")
                    if found and c in found[0]
                ),
                None,
            )
            if order is not None:
                found.sort(key=lambda r: (r[order] is None, r[order]))
            return found
    return None


async def _contact(conn: asyncpg.Connection, contact_id: str) -> dict[str, Any]:
    row = await conn.fetchrow(
        "SELECT id, name, email, phone, is_primary, portal_payer FROM contacts WHERE id = $1", contact_id
    )
    if row is None:
        return {"name": "(contact removed)", "destinations": [], "portal_payer": False}
    destinations = [
        mask_destination(ch, (row["email"] if ch is Channel.EMAIL else row["phone"]) or "")
        for ch in channels_on_file(row["email"], row["phone"])
    ]
    # Only masked destinations leave this function.
    return {
        "name": row["name"],
        "destinations": destinations,
        "is_primary": row["is_primary"],
        "portal_payer": row["portal_payer"],
    }


async def load_proof(
    pool: asyncpg.Pool, payment_id: str, *, exported_by: str, chain_key: bytes
) -> ProofOfAuthorization | None:
    """The document for `payment_id`, its chain verified now; None for an unknown payment."""
    async with pool.acquire() as conn:
        payment = await conn.fetchrow("SELECT * FROM payments WHERE id = $1", payment_id)
        if payment is None:
            return None
        invoice = await conn.fetchrow(
            "SELECT i.id, i.number, i.kind, i.customer_id, c.name AS customer_name"
            " FROM invoices i JOIN customers c ON c.id = i.customer_id WHERE i.id = $1",
            payment["invoice_id"],
        )
        contact = await _contact(conn, payment["payer_contact_id"])
        status_rows = await _status_rows(conn, payment_id)
    checked_at = datetime.now(UTC)
    invoice_rows = await fetch_trail(pool, payment["invoice_id"])
    customer_rows = await fetch_chain(pool, f"customer:{payment['customer_id']}")
    return build_proof(
        payment=dict(payment),
        invoice=dict(invoice),
        contact=contact,
        invoice_rows=invoice_rows,
        customer_rows=customer_rows,
        status_rows=status_rows,
        checked_at=checked_at,
        exported_by=exported_by,
        chain_key=chain_key,
    )


async def record_export(
    pool: asyncpg.Pool,
    proof: ProofOfAuthorization,
    client: ClientContext,
    *,
    formats: list[str],
    chain_key: bytes,
) -> int:
    """`PROOF_EXPORTED` in the invoice's chain, one row per export (a fresh key each time)."""
    async with pool.acquire() as conn:
        record = await append_event(
            conn,
            key=chain_key,
            event=AuditEventInput(
                event_key=f"proof:{proof.payment_id}:{uuid.uuid4().hex}",
                event_type=AuditEventType.PROOF_EXPORTED,
                invoice_id=proof.invoice_id,
                customer_id=proof.customer_id,
                payer_contact_id=proof.payer.contact_id,
                client=client,
                details={
                    "payment_id": proof.payment_id,
                    "formats": formats,
                    "chain_ok": proof.chain_ok,
                    "chain_checked_at": proof.chain_checked_at.isoformat(),
                },
                occurred_at=datetime.now(UTC),
            ),
        )
    return record.id


async def export_proof(
    pool: asyncpg.Pool, payment_id: str, client: ClientContext, *, formats: list[str], chain_key: bytes
) -> ProofOfAuthorization | None:
    """Load, verify and audit one export; None (and nothing audited) for an unknown payment."""
    proof = await load_proof(pool, payment_id, exported_by=client.actor, chain_key=chain_key)
    if proof is not None:
        await record_export(pool, proof, client, formats=formats, chain_key=chain_key)
    return proof
