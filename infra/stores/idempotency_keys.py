"""`Idempotency-Key` records (SPEC §12): the first answer to a POST/PUT, kept 24 h per API key.

A request claims its key before it runs; the answer is stored when it ends and replayed byte for
byte to a retry of the same request. A claim is a row without an answer: a second request with the
key finds it and is told the first is still running. A process that dies mid-request leaves such a
row; after `locked_until` the same request may claim it again, so a crash never blocks a key for a
whole day. A 5xx answer is not kept (the claim is released): the caller should retry, and the retry
must really run.
"""

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import asyncpg

KEPT_FOR = timedelta(hours=24)
# How long a running request holds its key before a retry may take it over (a crashed process).
CLAIM_LEASE = timedelta(minutes=5)
# One claim in this many also purges answers older than KEPT_FOR.
_PURGE_ONE_IN = 200


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"  # run the request, then `store_answer` (or `release`)
    REPLAY = "replay"  # the same request was answered before: send `answer`
    IN_USE = "in_use"  # the same key is held by a request still running
    REUSED = "reused"  # the key was used with another request


@dataclass(frozen=True)
class StoredAnswer:
    status_code: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    answer: StoredAnswer | None = None


async def claim(pool: asyncpg.Pool, *, api_key_id: str, key: str, fingerprint: bytes, now: datetime) -> Claim:
    async with pool.acquire() as conn:
        if secrets.randbelow(_PURGE_ONE_IN) == 0:
            await conn.execute("DELETE FROM idempotency_keys WHERE created_at < $1", now - KEPT_FOR)
        # A new key, an expired one, or a claim abandoned by the same request: ours now.
        taken = await conn.fetchval(
            "INSERT INTO idempotency_keys AS k (api_key_id, key, fingerprint, created_at, locked_until)"
            " VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT (api_key_id, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,"
            "   created_at = EXCLUDED.created_at, locked_until = EXCLUDED.locked_until,"
            "   status_code = NULL, response_headers = NULL, response_body = NULL, completed_at = NULL"
            " WHERE k.created_at < $6"
            "    OR (k.status_code IS NULL AND k.locked_until < $4 AND k.fingerprint = EXCLUDED.fingerprint)"
            " RETURNING true",
            api_key_id,
            key,
            fingerprint,
            now,
            now + CLAIM_LEASE,
            now - KEPT_FOR,
        )
        if taken:
            return Claim(ClaimOutcome.CLAIMED)
        row = await conn.fetchrow(
            "SELECT fingerprint, status_code, response_headers, response_body FROM idempotency_keys"
            " WHERE api_key_id = $1 AND key = $2",
            api_key_id,
            key,
        )
    if row is None:  # purged between the two statements: a fresh claim next time
        return Claim(ClaimOutcome.IN_USE)
    if bytes(row["fingerprint"]) != fingerprint:
        return Claim(ClaimOutcome.REUSED)
    if row["status_code"] is None:
        return Claim(ClaimOutcome.IN_USE)
    headers = [(str(name), str(value)) for name, value in json.loads(row["response_headers"])]
    return Claim(ClaimOutcome.REPLAY, StoredAnswer(row["status_code"], headers, bytes(row["response_body"])))


async def store_answer(
    pool: asyncpg.Pool, *, api_key_id: str, key: str, answer: StoredAnswer, now: datetime
) -> None:
    await pool.execute(
        "UPDATE idempotency_keys SET status_code = $3, response_headers = $4::jsonb, response_body = $5,"
        " completed_at = $6, locked_until = NULL WHERE api_key_id = $1 AND key = $2 AND status_code IS NULL",
        api_key_id,
        key,
        answer.status_code,
        json.dumps([list(pair) for pair in answer.headers]),
        answer.body,
        now,
    )


async def release(pool: asyncpg.Pool, *, api_key_id: str, key: str) -> None:
    """The request did not finish with an answer worth keeping: the same request may run again."""
    await pool.execute(
        "UPDATE idempotency_keys SET locked_until = '-infinity' WHERE api_key_id = $1 AND key = $2"
        " AND status_code IS NULL",
        api_key_id,
        key,
    )
