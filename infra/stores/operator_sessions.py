"""Operator sessions on the codec server and the Temporal UI proxy (issue 21).

One row per sign-in: the cookie holds a random token and the row its SHA-256, so a read of the table
signs nobody in, two operators never share a value, and signing out ends that session everywhere.
Every sign-in, refusal, throttle and sign-out is a row of `operator_sign_in_log` (append-only for
the app); the sign-in throttle counts refusals there, so every portal process sees the same counts.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, TypeAlias

import asyncpg

Db: TypeAlias = asyncpg.Pool | asyncpg.Connection
SignInEvent = Literal["signed_in", "refused", "throttled", "signed_out"]


@dataclass(frozen=True)
class OperatorSession:
    operator: str
    token_hash: bytes


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def start_session(
    pool: asyncpg.Pool, operator: str, *, lifetime: timedelta, ip: str, user_agent: str | None
) -> str:
    """A new session; returns the cookie token (never stored) and logs the sign-in."""
    token = secrets.token_urlsafe(32)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO operator_sessions (token_hash, operator, ip, user_agent, expires_at)"
            " VALUES ($1, $2, $3, $4, now() + $5::interval)",
            token_hash(token),
            operator,
            ip,
            user_agent,
            lifetime,
        )
        await log_sign_in(conn, "signed_in", operator=operator, ip=ip, user_agent=user_agent)
    return token


async def load_session(db: Db, token: str, *, idle: timedelta) -> OperatorSession | None:
    """The live session for this cookie token (its last use moves to now), or None."""
    row = await db.fetchrow(
        "UPDATE operator_sessions SET last_seen_at = now()"
        " WHERE token_hash = $1 AND ended_at IS NULL AND expires_at > now()"
        " AND last_seen_at > now() - $2::interval"
        " RETURNING operator, token_hash",
        token_hash(token),
        idle,
    )
    return None if row is None else OperatorSession(row["operator"], row["token_hash"])


async def end_session(pool: asyncpg.Pool, token: str, *, ip: str, user_agent: str | None) -> bool:
    """Sign-out: the row ends now, so the cookie opens nothing anywhere, even if kept."""
    async with pool.acquire() as conn, conn.transaction():
        operator = await conn.fetchval(
            "UPDATE operator_sessions SET ended_at = now()"
            " WHERE token_hash = $1 AND ended_at IS NULL RETURNING operator",
            token_hash(token),
        )
        if operator is None:
            return False
        await log_sign_in(conn, "signed_out", operator=operator, ip=ip, user_agent=user_agent)
    return True


async def log_sign_in(
    db: Db, event: SignInEvent, *, operator: str | None, ip: str, user_agent: str | None
) -> None:
    await db.execute(
        "INSERT INTO operator_sign_in_log (event, operator, ip, user_agent) VALUES ($1, $2, $3, $4)",
        event,
        operator,
        ip,
        (user_agent or "")[:300] or None,
    )


async def recent_refusals(db: Db, *, ip: str, window: timedelta) -> tuple[int, int]:
    """Refused sign-ins in the window: from this address, and from everywhere."""
    row = await db.fetchrow(
        "SELECT count(*) FILTER (WHERE ip = $1) AS here, count(*) AS everywhere"
        " FROM operator_sign_in_log WHERE event = 'refused' AND occurred_at > now() - $2::interval",
        ip,
        window,
    )
    assert row is not None
    return int(row["here"]), int(row["everywhere"])
