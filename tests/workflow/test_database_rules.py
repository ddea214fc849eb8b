"""Rules PostgreSQL itself enforces (SPEC §1, §3, §5): one payer per customer, an append-only,
hash-chained audit trail whose tampering shows."""

import copy
import itertools
import json
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from domain.audit import compute_event_hash, verify_chain
from domain.channels import Channel
from domain.status import PaymentStatus
from infra.stores.audit_trail import chain_ok
from tests.support import Harness
from tests.support import TestInvoice as Invoice
from tests.workflow.steps import Attempt, audit_rows, new_invoice


@pytest.fixture
async def rolled_back(db_pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A connection inside a transaction that is always rolled back: if the database ever
    accepted a forbidden statement, the shared test data would still be untouched."""
    async with db_pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            yield conn
        finally:
            await tx.rollback()


async def _paid_trail(harness: Harness) -> tuple[Invoice, list[dict[str, object]]]:
    inv = await new_invoice(harness.pool)
    attempt = await Attempt.open(harness, inv)
    await attempt.verified(Channel.SMS)
    assert (await attempt.pay()).status is PaymentStatus.PAID
    return inv, await audit_rows(harness.pool, inv.invoice_id)


async def test_database_refuses_a_second_portal_payer(db_pool: asyncpg.Pool) -> None:
    inv = await new_invoice(db_pool)
    with pytest.raises(asyncpg.UniqueViolationError):
        await db_pool.execute(
            "INSERT INTO contacts (id, customer_id, name, email, portal_payer) VALUES ($1, $2, 'Second', $3, true)",
            f"{inv.customer_id}-SECOND",
            inv.customer_id,
            "second@example.com",
        )
    with pytest.raises(asyncpg.UniqueViolationError):
        await db_pool.execute("UPDATE contacts SET portal_payer = true WHERE id = $1", inv.primary_contact_id)

    # Marking a new payer unmarks the old one, in one transaction.
    async with db_pool.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE contacts SET portal_payer = false WHERE customer_id = $1", inv.customer_id)
        await conn.execute("UPDATE contacts SET portal_payer = true WHERE id = $1", inv.primary_contact_id)
    payers = await db_pool.fetch(
        "SELECT id FROM contacts WHERE customer_id = $1 AND portal_payer", inv.customer_id
    )
    assert [r["id"] for r in payers] == [inv.primary_contact_id]


async def test_database_refuses_a_second_primary_contact(db_pool: asyncpg.Pool) -> None:
    inv = await new_invoice(db_pool)
    with pytest.raises(asyncpg.UniqueViolationError):
        await db_pool.execute("UPDATE contacts SET is_primary = true WHERE id = $1", inv.payer_contact_id)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET details = '{}'::jsonb WHERE invoice_id = $1",
        "UPDATE audit_events SET destination = 'attacker@example.com' WHERE invoice_id = $1",
        "DELETE FROM audit_events WHERE invoice_id = $1",
        "TRUNCATE audit_events",
    ],
    ids=["update-details", "update-destination", "delete", "truncate"],
)
async def test_audit_trail_is_append_only(
    harness: Harness, rolled_back: asyncpg.Connection, statement: str
) -> None:
    inv, before = await _paid_trail(harness)
    args = [inv.invoice_id] if "$1" in statement else []
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await rolled_back.execute(statement, *args)
    assert await audit_rows(harness.pool, inv.invoice_id) == before
    assert await chain_ok(harness.pool, inv.invoice_id, key=harness.settings.audit_key())


async def test_hash_chain_verifies_and_tampering_shows(harness: Harness) -> None:
    inv, rows = await _paid_trail(harness)
    assert verify_chain(rows, key=harness.settings.audit_key())
    assert rows[0]["prev_hash"] == "0" * 64
    assert all(later["prev_hash"] == earlier["hash"] for earlier, later in itertools.pairwise(rows))

    def tampered(change: str) -> list[dict[str, object]]:
        forged = copy.deepcopy(rows)
        target = forged[3]  # OTP_VERIFIED: what a dispute would turn on
        if change == "details":
            target["details"]["check_seq"] = 2  # type: ignore[index]
        elif change == "destination":
            target["destination"] = "•••-•••-0000"
        elif change == "payer":
            target["payer_contact_id"] = inv.primary_contact_id
        elif change == "time":
            target["occurred_at"] = target["occurred_at"] - timedelta(minutes=5)  # type: ignore[operator]
        elif change == "removed":
            del forged[3]
        elif change == "reordered":
            forged[2], forged[3] = forged[3], forged[2]
        elif change == "rehashed":
            # Recomputing the edited row's own hash is not enough: the next row still points at the old one.
            target["ip"] = "192.0.2.66"
            target["hash"] = compute_event_hash(target["prev_hash"], target, key=harness.settings.audit_key())  # type: ignore[arg-type]
        return forged

    for change in ("details", "destination", "payer", "time", "removed", "reordered", "rehashed"):
        assert not verify_chain(tampered(change), key=harness.settings.audit_key()), change


async def test_a_row_forged_without_the_chain_key_shows(harness: Harness) -> None:
    """An insider who can INSERT appends a plausible row, hashed the way the code does but without
    AUDIT_CHAIN_KEY (the old unkeyed SHA-256, or any other key): the chain no longer verifies."""
    inv, rows = await _paid_trail(harness)
    last = rows[-1]
    last_hash = str(last["hash"])
    forged = dict(last, event_key=f"forged-{inv.invoice_id}", event_type="OTP_VERIFIED", ip="192.0.2.66")
    forged["prev_hash"] = last_hash
    forged["hash"] = compute_event_hash(last_hash, forged, key=b"a key the insider guessed")
    await harness.pool.execute(
        "INSERT INTO audit_events (event_key, chain_id, event_type, invoice_id, customer_id, payer_contact_id,"
        " workflow_id, run_id, channel, destination, actor, ip, user_agent, details, occurred_at, prev_hash, hash)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb, $15, $16, $17)",
        forged["event_key"],
        f"invoice:{inv.invoice_id}",
        forged["event_type"],
        inv.invoice_id,
        forged["customer_id"],
        forged["payer_contact_id"],
        forged["workflow_id"],
        forged["run_id"],
        forged["channel"],
        forged["destination"],
        "customer",
        forged["ip"],
        forged["user_agent"],
        json.dumps(forged["details"]),
        forged["occurred_at"],
        forged["prev_hash"],
        forged["hash"],
    )
    assert not await chain_ok(harness.pool, inv.invoice_id, key=harness.settings.audit_key())
    genuine = compute_event_hash(last_hash, forged, key=harness.settings.audit_key())
    assert genuine != forged["hash"]
