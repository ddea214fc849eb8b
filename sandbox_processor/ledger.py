"""The sandbox processor's ledger: debits, their events and the webhook deliveries, in its own tables.

A debit's change of status and the event that tells of it are written in one transaction, so a
restart of the service loses nothing: the clock resumes from the tables.
"""

import hashlib
import json
import random
import uuid
from datetime import timedelta
from typing import Any

import asyncpg

from domain.masking import last4
from domain.sandbox import sandbox_decline_reason

# SPEC §9 test accounts beyond the §6 declines.
FAILS_R01 = "000444444440"
RETURNS_R10 = "000555555553"
VALIDATION_FAILS = "000666666666"


class IdempotencyConflict(Exception):
    """The key was used before with another body."""


def request_digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def scenario_for(account_number: str) -> tuple[str, str | None]:
    reason = sandbox_decline_reason(account_number)
    if reason is not None:
        return "declined", reason
    if account_number == VALIDATION_FAILS:
        return "declined", "no_account"
    if account_number == FAILS_R01:
        return "fail_r01", None
    if account_number == RETURNS_R10:
        return "return_r10", None
    return "settle", None


def debit_view(row: asyncpg.Record) -> dict[str, Any]:
    metadata = row["metadata"]
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    return {
        "id": row["id"],
        "status": row["status"],
        "amount_cents": row["amount_cents"],
        "currency": row["currency"],
        "account_last4": row["account_last4"],
        "decline_reason": row["decline_reason"],
        "return_code": row["return_code"],
        "metadata": metadata,
        "created_at": row["created_at"].isoformat(),
        "expected_settlement_at": row["settle_at"].isoformat() if row["settle_at"] else None,
        "settled_at": row["settled_at"].isoformat() if row["settled_at"] else None,
    }


class FaultPlan:
    """Deliberate webhook faults (tests, the campaign): dropped or duplicated deliveries."""

    def __init__(self, drop_rate: float = 0.0, duplicate_rate: float = 0.0, seed: int | None = None) -> None:
        self.drop_rate = drop_rate
        self.duplicate_rate = duplicate_rate
        self._random = random.Random(seed)

    def copies(self) -> int:
        """0 = dropped, 1 = normal, 2 = duplicated."""
        if self.drop_rate and self._random.random() < self.drop_rate:
            return 0
        if self.duplicate_rate and self._random.random() < self.duplicate_rate:
            return 2
        return 1


async def publish(conn: asyncpg.Connection, row: asyncpg.Record, event_type: str, faults: FaultPlan) -> None:
    metadata = row["metadata"]
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    event_id = "evt_" + uuid.uuid4().hex
    occurred = await conn.fetchval("SELECT now()")
    seq = await conn.fetchval(
        "INSERT INTO sandbox_events (instance, id, debit_id, type, payload)"
        " VALUES ($1, $2, $3, $4, '{}'::jsonb) RETURNING seq",
        row["instance"],
        event_id,
        row["id"],
        event_type,
    )
    payload = {
        "id": event_id,
        "type": event_type,
        "debit_id": row["id"],
        "payment_id": metadata.get("payment_id"),
        "status": row["status"],
        "return_code": row["return_code"],
        "occurred_at": occurred.isoformat(),
        "seq": seq,
    }
    await conn.execute(
        "UPDATE sandbox_events SET payload = $2::jsonb WHERE seq = $1", seq, json.dumps(payload)
    )
    copies = faults.copies()
    if copies == 0:
        await conn.execute("INSERT INTO sandbox_deliveries (event_seq, dropped) VALUES ($1, true)", seq)
    for _ in range(copies):
        await conn.execute("INSERT INTO sandbox_deliveries (event_seq) VALUES ($1)", seq)


async def create_debit(
    pool: asyncpg.Pool,
    instance: str,
    *,
    idempotency_key: str,
    body: dict[str, Any],
    settlement_seconds: float,
    faults: FaultPlan,
) -> tuple[asyncpg.Record, bool]:
    """Returns (debit row, created). Same key + same body → the first debit; another body → conflict."""
    digest = request_digest(body)
    account_number = str(body["account_number"])
    scenario, reason = scenario_for(account_number)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"sbx:{instance}:{idempotency_key}")
        existing = await conn.fetchrow(
            "SELECT * FROM sandbox_debits WHERE instance = $1 AND idempotency_key = $2",
            instance,
            idempotency_key,
        )
        if existing is not None:
            if existing["request_digest"] != digest:
                raise IdempotencyConflict("idempotency key reused with a different request")
            return existing, False
        row = await conn.fetchrow(
            "INSERT INTO sandbox_debits (id, idempotency_key, request_digest, amount_cents, currency,"
            " routing_number, account_last4, scenario, status, decline_reason, metadata, settle_at, instance)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11::jsonb,"
            " CASE WHEN $8 = 'declined' THEN NULL ELSE now() + $12::interval END, $13) RETURNING *",
            "dbt_" + uuid.uuid4().hex[:24],
            idempotency_key,
            digest,
            int(body["amount_cents"]),
            str(body["currency"]),
            str(body["routing_number"]),
            last4(account_number),
            scenario,
            "declined" if scenario == "declined" else "processing",
            reason,
            json.dumps(body.get("metadata") or {}),
            timedelta(seconds=settlement_seconds),
            instance,
        )
        if scenario != "declined":
            await publish(conn, row, "debit.processing", faults)
        return row, True


async def get_debit(pool: asyncpg.Pool, instance: str, debit_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await pool.fetchrow(
        "SELECT * FROM sandbox_debits WHERE id = $1 AND instance = $2", debit_id, instance
    )
    return row


async def find_debit(pool: asyncpg.Pool, instance: str, idempotency_key: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await pool.fetchrow(
        "SELECT * FROM sandbox_debits WHERE instance = $1 AND idempotency_key = $2", instance, idempotency_key
    )
    return row


async def cancel_debit(
    pool: asyncpg.Pool, instance: str, debit_id: str, faults: FaultPlan
) -> asyncpg.Record | None:
    """The debit after the call; its status says whether the cancel took (canceled) or came too late."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "UPDATE sandbox_debits SET status = 'canceled', closed_at = now()"
            " WHERE id = $1 AND instance = $2 AND status = 'processing' RETURNING *",
            debit_id,
            instance,
        )
        if row is not None:
            await publish(conn, row, "debit.canceled", faults)
            return row
        found: asyncpg.Record | None = await conn.fetchrow(
            "SELECT * FROM sandbox_debits WHERE id = $1 AND instance = $2", debit_id, instance
        )
        return found


async def advance_clock(
    pool: asyncpg.Pool, instance: str, *, late_return_seconds: float, faults: FaultPlan
) -> int:
    """Moves every debit that is due: fails, settlements, late returns. Returns how many moved."""
    moved = 0
    async with pool.acquire() as conn, conn.transaction():
        for row in await conn.fetch(
            "UPDATE sandbox_debits SET status = 'failed', return_code = 'R01', closed_at = now()"
            " WHERE id IN (SELECT id FROM sandbox_debits WHERE instance = $1 AND status = 'processing' AND scenario = 'fail_r01'"
            " AND settle_at <= now() ORDER BY settle_at LIMIT 100 FOR UPDATE SKIP LOCKED) RETURNING *",
            instance,
        ):
            await publish(conn, row, "debit.failed", faults)
            moved += 1
        for row in await conn.fetch(
            "UPDATE sandbox_debits SET status = 'settled', settled_at = now(),"
            " return_at = CASE WHEN scenario = 'return_r10' THEN now() + $1::interval END"
            " WHERE id IN (SELECT id FROM sandbox_debits WHERE instance = $2 AND status = 'processing' AND scenario <> 'fail_r01'"
            " AND settle_at <= now() ORDER BY settle_at LIMIT 100 FOR UPDATE SKIP LOCKED) RETURNING *",
            timedelta(seconds=late_return_seconds),
            instance,
        ):
            await publish(conn, row, "debit.settled", faults)
            moved += 1
        for row in await conn.fetch(
            "UPDATE sandbox_debits SET status = 'returned', return_code = 'R10', closed_at = now()"
            " WHERE id IN (SELECT id FROM sandbox_debits WHERE instance = $1 AND status = 'settled' AND return_at <= now()"
            " ORDER BY return_at LIMIT 100 FOR UPDATE SKIP LOCKED) RETURNING *",
            instance,
        ):
            await publish(conn, row, "debit.returned", faults)
            moved += 1
    return moved


async def events_after(pool: asyncpg.Pool, instance: str, after: int, limit: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT payload FROM sandbox_events WHERE instance = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        instance,
        after,
        limit,
    )
    return [json.loads(r["payload"]) if isinstance(r["payload"], str) else dict(r["payload"]) for r in rows]


async def due_deliveries(
    pool: asyncpg.Pool, instance: str, *, newest_first: bool, limit: int = 50
) -> list[asyncpg.Record]:
    """Deliveries due now. `newest_first` (a test fault) holds a debit's events until it has no more
    to come, then sends them newest first: the receiver sees `settled` before `processing`."""
    order = "DESC" if newest_first else "ASC"
    held = (
        " AND (b.status IN ('failed', 'returned', 'canceled') OR (b.status = 'settled' AND b.scenario = 'settle'))"
        if newest_first
        else ""
    )
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT d.id, d.attempts, e.payload FROM sandbox_deliveries d JOIN sandbox_events e ON e.seq = d.event_seq"
        " JOIN sandbox_debits b ON b.id = e.debit_id"
        " WHERE e.instance = $2 AND d.delivered_at IS NULL AND NOT d.dropped AND d.next_attempt_at <= now()"
        f"{held} ORDER BY d.event_seq {order}, d.id LIMIT $1",
        limit,
        instance,
    )
    return rows


async def mark_delivered(pool: asyncpg.Pool, delivery_id: int) -> None:
    await pool.execute(
        "UPDATE sandbox_deliveries SET delivered_at = now(), attempts = attempts + 1 WHERE id = $1",
        delivery_id,
    )


async def mark_failed(
    pool: asyncpg.Pool, delivery_id: int, attempts: int, retry_base: float, error: str
) -> None:
    backoff = min(retry_base * (2 ** min(attempts, 10)), 300.0)
    await pool.execute(
        "UPDATE sandbox_deliveries SET attempts = attempts + 1, next_attempt_at = now() + $2::interval,"
        " last_error = $3 WHERE id = $1",
        delivery_id,
        timedelta(seconds=backoff),
        error[:500],
    )


async def record_validation(pool: asyncpg.Pool, routing_number: str, account_number: str) -> asyncpg.Record:
    invalid = account_number == VALIDATION_FAILS
    row: asyncpg.Record = await pool.fetchrow(
        "INSERT INTO sandbox_validations (id, routing_number, account_last4, outcome, reason)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING *",
        "val_" + uuid.uuid4().hex[:24],
        routing_number,
        last4(account_number),
        "invalid" if invalid else "valid",
        "no_account" if invalid else None,
    )
    return row
