"""Server-side staff sessions (SPEC §10): the cookie holds a random token, the row its SHA-256.

A session is good while its row is not ended, its account is not disabled, it was used within the
idle timeout and started within the absolute lifetime. Sign-out and disable end rows at once.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import asyncpg


@dataclass(frozen=True)
class StaffSession:
    token_hash: bytes
    staff_user_id: int
    email: str
    name: str
    csrf_token: str
    flash: str | None


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def start_session(
    db: asyncpg.Pool | asyncpg.Connection, staff_user_id: int, ip: str | None, user_agent: str | None
) -> str:
    """Returns the cookie token (shown once, never stored)."""
    token = secrets.token_urlsafe(32)
    await db.execute(
        "INSERT INTO staff_sessions (token_hash, staff_user_id, csrf_token, ip, user_agent)"
        " VALUES ($1, $2, $3, $4, $5)",
        token_hash(token),
        staff_user_id,
        secrets.token_urlsafe(32),
        ip,
        user_agent,
    )
    return token


async def load_session(
    db: asyncpg.Pool | asyncpg.Connection, token: str, *, idle: timedelta, absolute: timedelta
) -> StaffSession | None:
    """The live session for this cookie token (its last use moves to now), or None."""
    row = await db.fetchrow(
        "UPDATE staff_sessions s SET last_seen_at = now()"
        " FROM staff_users u"
        " WHERE s.token_hash = $1 AND u.id = s.staff_user_id"
        " AND s.ended_at IS NULL AND u.disabled_at IS NULL"
        " AND s.last_seen_at > now() - $2::interval AND s.created_at > now() - $3::interval"
        " RETURNING s.token_hash, s.staff_user_id, u.email, u.name, s.csrf_token, s.flash",
        token_hash(token),
        idle,
        absolute,
    )
    if row is None:
        return None
    return StaffSession(
        row["token_hash"], row["staff_user_id"], row["email"], row["name"], row["csrf_token"], row["flash"]
    )


async def end_session(db: asyncpg.Pool | asyncpg.Connection, token: str) -> None:
    await db.execute(
        "UPDATE staff_sessions SET ended_at = now() WHERE token_hash = $1 AND ended_at IS NULL",
        token_hash(token),
    )


async def set_flash(db: asyncpg.Pool | asyncpg.Connection, session: StaffSession, text: str | None) -> None:
    """A one-line notice for the next page this session shows (after a redirect)."""
    await db.execute("UPDATE staff_sessions SET flash = $2 WHERE token_hash = $1", session.token_hash, text)
