"""API keys (SPEC §12): made, found by their secret, listed, revoked and rolled.

A secret is `ppk_live_…` (prod) or `ppk_test_…` (elsewhere) followed by 43 URL-safe random
characters, shown once. Only HMAC-SHA256(API_KEY_PEPPER, secret) and a short display prefix are
stored: a copy of the table lets nobody call the API, and without the pepper a stolen hash cannot
even be checked against a guess. The lookup is by that keyed hash (a unique index), so no secret is
ever compared character by character.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeAlias

import asyncpg

from domain.api_scopes import ALL_SCOPES

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection

SECRET_RANDOM_CHARS = 43  # secrets.token_urlsafe(32)
_ID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
# Shown beside the key in lists: the mode and a few characters, never enough to matter.
_PREFIX_RANDOM_CHARS = 6
# A used key's `last_used_at` moves at most this often: one write a minute, not one per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str
    name: str
    prefix: str
    scopes: tuple[str, ...]
    mode: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime | None
    rolled_from: str | None

    def usable_at(self, now: datetime) -> bool:
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return self.expires_at is None or self.expires_at > now


class KeyRevoked(Exception):
    """A revoked key is not rolled: its replacement would bring back what was cut off."""


@dataclass(frozen=True)
class IssuedKey:
    record: ApiKeyRecord
    secret: str  # shown once, never stored


def secret_hash(pepper: bytes, secret: str) -> bytes:
    return hmac.new(pepper, secret.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()


def new_key_id() -> str:
    return "key_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(20))


def new_secret(mode: str) -> str:
    return f"ppk_{mode}_" + secrets.token_urlsafe(32)


def _record(row: asyncpg.Record) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row["id"],
        name=row["name"],
        prefix=row["prefix"],
        scopes=tuple(row["scopes"]),
        mode=row["mode"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
        expires_at=row["expires_at"],
        rolled_from=row["rolled_from"],
    )


_COLUMNS = "id, name, prefix, scopes, mode, created_at, last_used_at, revoked_at, expires_at, rolled_from"


async def create_key(
    db: Executor,
    *,
    pepper: bytes,
    name: str,
    scopes: tuple[str, ...] | None,
    mode: str,
    rolled_from: str | None = None,
) -> IssuedKey:
    chosen = tuple(sorted(set(scopes))) if scopes else ALL_SCOPES
    unknown = set(chosen) - set(ALL_SCOPES)
    if unknown:
        raise ValueError(f"unknown scope {sorted(unknown)[0]!r}; scopes are {', '.join(ALL_SCOPES)}")
    secret = new_secret(mode)
    prefix = secret[: len(f"ppk_{mode}_") + _PREFIX_RANDOM_CHARS]
    row = await db.fetchrow(
        f"INSERT INTO api_keys (id, name, prefix, secret_hash, scopes, mode, rolled_from)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_COLUMNS}",
        new_key_id(),
        name,
        prefix,
        secret_hash(pepper, secret),
        list(chosen),
        mode,
        rolled_from,
    )
    assert row is not None
    return IssuedKey(_record(row), secret)


async def find_by_secret(db: Executor, *, pepper: bytes, secret: str) -> ApiKeyRecord | None:
    row = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM api_keys WHERE secret_hash = $1", secret_hash(pepper, secret)
    )
    return _record(row) if row is not None else None


async def mark_used(db: Executor, key_id: str, now: datetime) -> None:
    await db.execute(
        "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
        key_id,
        now,
        now - LAST_USED_RESOLUTION,
    )


async def list_keys(db: Executor) -> list[ApiKeyRecord]:
    rows = await db.fetch(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, id")
    return [_record(r) for r in rows]


async def get_key(db: Executor, key_id: str) -> ApiKeyRecord | None:
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM api_keys WHERE id = $1", key_id)
    return _record(row) if row is not None else None


async def revoke_key(db: Executor, key_id: str, now: datetime) -> ApiKeyRecord | None:
    """Revoked at once (a second revoke keeps the first time); None when there is no such key."""
    row = await db.fetchrow(
        f"UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING {_COLUMNS}",
        key_id,
        now,
    )
    return _record(row) if row is not None else None


async def roll_key(
    conn: asyncpg.Connection, *, pepper: bytes, key_id: str, old_valid_until: datetime
) -> IssuedKey | None:
    """A new key with the same name and scopes; the old one works until `old_valid_until`.

    Call inside a transaction. None when the key does not exist; `KeyRevoked` when it was revoked."""
    old = await conn.fetchrow(f"SELECT {_COLUMNS} FROM api_keys WHERE id = $1 FOR UPDATE", key_id)
    if old is None:
        return None
    record = _record(old)
    if record.revoked_at is not None:
        raise KeyRevoked(key_id)
    await conn.execute(
        "UPDATE api_keys SET expires_at = LEAST(COALESCE(expires_at, $2), $2) WHERE id = $1",
        key_id,
        old_valid_until,
    )
    return await create_key(
        conn, pepper=pepper, name=record.name, scopes=record.scopes, mode=record.mode, rolled_from=key_id
    )
