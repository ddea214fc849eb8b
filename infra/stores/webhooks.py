"""Webhook endpoints and their tries (SPEC §12): the SQL shared by the API, the console, the relay
and the delivery activity.

Secrets enter and leave only through `SecretBox`: this store never sees one in the clear except
to hand it to the caller that shows it once (creation, rotation) or signs with it (a try).
"""

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from domain.webhooks import ROTATION_OVERLAP, TryOutcome
from infra.webhook_secrets import SealedSecret, SecretBox, new_signing_secret

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_ENDPOINT_COLUMNS = "id, url, events, created_by, created_at, updated_at, failing_since, disabled_at, disabled_reason, deleted_at"


def new_endpoint_id() -> str:
    return "we_" + "".join(secrets.choice(_ALPHABET) for _ in range(24))


@dataclass(frozen=True)
class Endpoint:
    id: str
    url: str
    events: list[str]
    created_by: str
    created_at: datetime
    failing_since: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None
    deleted_at: datetime | None

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None and self.deleted_at is None

    def public(self) -> dict[str, Any]:
        """What the API shows: never a secret."""
        return {
            "id": self.id,
            "object": "webhook_endpoint",
            "url": self.url,
            "events": list(self.events),
            "enabled": self.enabled,
            "disabled_at": self.disabled_at.isoformat() if self.disabled_at else None,
            "disabled_reason": self.disabled_reason,
            "created_at": self.created_at.isoformat(),
        }


def _endpoint(row: asyncpg.Record) -> Endpoint:
    return Endpoint(
        id=row["id"],
        url=row["url"],
        events=list(row["events"]),
        created_by=row["created_by"],
        created_at=row["created_at"],
        failing_since=row["failing_since"],
        disabled_at=row["disabled_at"],
        disabled_reason=row["disabled_reason"],
        deleted_at=row["deleted_at"],
    )


async def create_endpoint(
    conn: asyncpg.Connection, box: SecretBox, *, url: str, events: list[str], created_by: str
) -> tuple[Endpoint, str]:
    """The new endpoint and its secret, which the caller shows once and forgets."""
    endpoint_id = new_endpoint_id()
    secret = new_signing_secret()
    sealed = box.seal(endpoint_id, secret)
    row = await conn.fetchrow(
        "INSERT INTO webhook_endpoints (id, url, events, secret_key_id, secret_sealed, created_by)"
        f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_ENDPOINT_COLUMNS}",
        endpoint_id,
        url,
        events,
        sealed.key_id,
        sealed.sealed,
        created_by,
    )
    return _endpoint(row), secret


async def get_endpoint(conn: asyncpg.Connection | asyncpg.Pool, endpoint_id: str) -> Endpoint | None:
    row = await conn.fetchrow(f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1", endpoint_id)
    return _endpoint(row) if row is not None else None


async def list_endpoints(
    conn: asyncpg.Connection | asyncpg.Pool, *, limit: int = 100, starting_after: str | None = None
) -> list[Endpoint]:
    """Newest first, deleted ones left out; `limit` rows (ask one more to learn `has_more`)."""
    rows = await conn.fetch(
        f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints e WHERE deleted_at IS NULL"
        " AND ($2::text IS NULL OR (e.created_at, e.id) < ("
        "   SELECT created_at, id FROM webhook_endpoints WHERE id = $2))"
        " ORDER BY created_at DESC, id DESC LIMIT $1",
        limit,
        starting_after,
    )
    return [_endpoint(r) for r in rows]


async def delete_endpoint(conn: asyncpg.Connection, endpoint_id: str) -> bool:
    result: str = await conn.execute(
        "UPDATE webhook_endpoints SET deleted_at = now(), updated_at = now() WHERE id = $1 AND deleted_at IS NULL",
        endpoint_id,
    )
    return result.endswith(" 1")


async def rotate_secret(
    conn: asyncpg.Connection, box: SecretBox, endpoint_id: str, *, overlap: timedelta = ROTATION_OVERLAP
) -> str | None:
    """A new secret; the current one keeps signing beside it for `overlap`. None: no such endpoint."""
    secret = new_signing_secret()
    sealed = box.seal(endpoint_id, secret)
    result: str = await conn.execute(
        "UPDATE webhook_endpoints SET previous_secret_key_id = secret_key_id,"
        " previous_secret_sealed = secret_sealed, previous_secret_expires_at = now() + $4::interval,"
        " secret_key_id = $2, secret_sealed = $3, updated_at = now()"
        " WHERE id = $1 AND deleted_at IS NULL",
        endpoint_id,
        sealed.key_id,
        sealed.sealed,
        overlap,
    )
    return secret if result.endswith(" 1") else None


async def signing_secrets(
    conn: asyncpg.Connection | asyncpg.Pool, box: SecretBox, endpoint_id: str
) -> list[str]:
    """The secrets a try signs with now: the current one, then the previous while it overlaps."""
    row = await conn.fetchrow(
        "SELECT secret_key_id, secret_sealed, previous_secret_key_id, previous_secret_sealed,"
        " previous_secret_expires_at > now() AS previous_live FROM webhook_endpoints WHERE id = $1",
        endpoint_id,
    )
    if row is None:
        return []
    found = [box.open(endpoint_id, SealedSecret(row["secret_key_id"], row["secret_sealed"]))]
    if row["previous_live"]:
        found.append(
            box.open(endpoint_id, SealedSecret(row["previous_secret_key_id"], row["previous_secret_sealed"]))
        )
    return found


async def disable_endpoint(conn: asyncpg.Connection | asyncpg.Pool, endpoint_id: str, reason: str) -> bool:
    """True when this call disabled it (so only one caller tells staff)."""
    result: str = await conn.execute(
        "UPDATE webhook_endpoints SET disabled_at = now(), disabled_reason = $2, updated_at = now()"
        " WHERE id = $1 AND disabled_at IS NULL",
        endpoint_id,
        reason[:200],
    )
    return result.endswith(" 1")


@dataclass(frozen=True)
class RecordedTry:
    outcome: TryOutcome
    status_code: int | None
    error: str | None


async def recorded_try(conn: asyncpg.Connection | asyncpg.Pool, try_key: str) -> RecordedTry | None:
    row = await conn.fetchrow(
        "SELECT outcome, status_code, error FROM webhook_deliveries WHERE try_key = $1", try_key
    )
    if row is None:
        return None
    return RecordedTry(TryOutcome(row["outcome"]), row["status_code"], row["error"])


async def record_try(
    conn: asyncpg.Connection,
    *,
    try_key: str,
    endpoint_id: str,
    event_id: str,
    attempt: int,
    outcome: TryOutcome,
    status_code: int | None,
    duration_ms: int,
    error: str | None,
) -> datetime | None:
    """Records the try and keeps `failing_since`; returns it (None after a delivery)."""
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO webhook_deliveries (try_key, endpoint_id, event_id, attempt, outcome, status_code,"
            " duration_ms, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (try_key) DO NOTHING",
            try_key,
            endpoint_id,
            event_id,
            attempt,
            outcome.value,
            status_code,
            duration_ms,
            error[:300] if error else None,
        )
        if outcome is TryOutcome.DELIVERED:
            await conn.execute("UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1", endpoint_id)
            return None
        failing_since: datetime | None = await conn.fetchval(
            "UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, now()) WHERE id = $1"
            " RETURNING failing_since",
            endpoint_id,
        )
        return failing_since


async def recent_tries(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    endpoint_id: str | None = None,
    limit: int = 50,
    starting_after: int | None = None,
) -> list[dict[str, Any]]:
    """Newest first; the event's type beside each try. Never a response body: none is stored."""
    rows = await conn.fetch(
        "SELECT d.id, d.endpoint_id, d.event_id, e.type AS event_type, d.attempt, d.attempted_at,"
        " d.outcome, d.status_code, d.duration_ms, d.error"
        " FROM webhook_deliveries d JOIN events e ON e.id = d.event_id"
        " WHERE ($1::text IS NULL OR d.endpoint_id = $1) AND ($3::bigint IS NULL OR d.id < $3)"
        " ORDER BY d.id DESC LIMIT $2",
        endpoint_id,
        limit,
        starting_after,
    )
    return [dict(r) for r in rows]


async def load_event(conn: asyncpg.Connection | asyncpg.Pool, event_id: str) -> dict[str, Any] | None:
    """The event as the API shows it: `{"id", "type", "created_at", "data"}`."""
    row = await conn.fetchrow(
        "SELECT id, type, created_at, data::text AS data FROM events WHERE id = $1", event_id
    )
    if row is None:
        return None
    return {
        "id": row["id"],
        "type": row["type"],
        "created_at": row["created_at"].isoformat(),
        "data": json.loads(row["data"]),
    }
