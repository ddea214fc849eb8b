"""`portalpay apikey create|list|revoke|roll` (SPEC §12): keys for the company's own systems.

The secret is printed once, at creation or roll; only its keyed hash is kept. Creating, rolling and
revoking are audited (`API_KEY_CREATED`, `API_KEY_REVOKED`) with the CLI as actor.
"""

import json
import re
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import typer

from domain.activity_io import AuditEventInput
from domain.api_scopes import ALL_SCOPES
from domain.attempt import ClientContext
from domain.audit import AuditEventType
from domain.input_rules import has_control_characters
from infra.resources import ExpectedFailure, open_pool
from infra.settings import Settings
from infra.stores import api_keys
from infra.stores.audit_trail import append_event
from starters.cli.output import emit_table, to_jsonable
from starters.cli.plumbing import console, run_async, settings_or_exit

apikey_app = typer.Typer(help="API keys for /api/v1 (SPEC §12).", no_args_is_help=True)

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip())
    if not match:
        raise ExpectedFailure(f"{text!r} is not a duration like 30m, 24h or 7d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _mode(settings: Settings) -> str:
    return "test" if settings.is_dev else "live"


def _cli_client() -> ClientContext:
    return ClientContext(actor="cli", user_agent=f"portalpay-cli on {socket.gethostname()}")


def _key_view(record: api_keys.ApiKeyRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "prefix": record.prefix,
        "scopes": list(record.scopes),
        "mode": record.mode,
        "created_at": record.created_at,
        "last_used_at": record.last_used_at,
        "revoked_at": record.revoked_at,
        "expires_at": record.expires_at,
        "rolled_from": record.rolled_from,
    }


async def _audit(conn: Any, settings: Settings, event_type: AuditEventType, details: dict[str, Any]) -> None:
    await append_event(
        conn,
        key=settings.audit_key(),
        event=AuditEventInput(
            event_key=f"apikey:{event_type.value}:{details['key_id']}:{uuid.uuid4().hex}",
            event_type=event_type,
            invoice_id=None,
            customer_id=None,
            payer_contact_id=None,
            client=_cli_client(),
            details=details,
            occurred_at=datetime.now(UTC),
        ),
    )


def _print_issued(issued: api_keys.IssuedKey, as_json: bool, verb: str) -> None:
    if as_json:
        print(json.dumps(to_jsonable({**_key_view(issued.record), "secret": issued.secret})))
        return
    console.print(
        f"API key {verb}: {issued.record.id} ({issued.record.name}), scopes {' '.join(issued.record.scopes)}"
    )
    print(f"secret (shown once, store it now): {issued.secret}", flush=True)


@apikey_app.command("create")
def create(
    name: str = typer.Option(..., "--name", help="What uses this key, e.g. 'CRM sync'."),
    scope: list[str] = typer.Option([], "--scope", help=f"Repeatable; default all: {', '.join(ALL_SCOPES)}."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object on stdout."),
) -> None:
    """Create a key; its secret is printed once."""
    settings = settings_or_exit()

    @run_async
    async def go() -> None:
        clean = name.strip()
        if not clean or len(clean) > 120 or has_control_characters(clean):
            raise ExpectedFailure("--name must be 1-120 printable characters")
        unknown = sorted(set(scope) - set(ALL_SCOPES))
        if unknown:
            raise ExpectedFailure(f"unknown scope {unknown[0]!r}; scopes are {', '.join(ALL_SCOPES)}")
        async with open_pool(settings) as pool, pool.acquire() as conn, conn.transaction():
            issued = await api_keys.create_key(
                conn,
                pepper=settings.secret("api_key_pepper").encode(),
                name=clean,
                scopes=tuple(scope) or None,
                mode=_mode(settings),
            )
            await _audit(
                conn,
                settings,
                AuditEventType.API_KEY_CREATED,
                {
                    "key_id": issued.record.id,
                    "name": clean,
                    "prefix": issued.record.prefix,
                    "scopes": list(issued.record.scopes),
                },
            )
        _print_issued(issued, as_json, "created")

    go()


@apikey_app.command("list")
def list_keys(as_json: bool = typer.Option(False, "--json", help="A JSON array on stdout.")) -> None:
    """Keys with prefix, scopes, created, last used, revoked (never a secret)."""
    settings = settings_or_exit()

    @run_async
    async def go() -> None:
        async with open_pool(settings) as pool:
            records = await api_keys.list_keys(pool)
        if as_json:
            print(json.dumps(to_jsonable([_key_view(r) for r in records])))
            return

        def when(value: datetime | None) -> str:
            return value.isoformat(timespec="seconds") if value else "-"

        emit_table(
            console,
            "API keys",
            ["id", "name", "prefix", "scopes", "created", "last used", "revoked", "expires"],
            [
                [
                    r.id,
                    r.name,
                    r.prefix,
                    " ".join(r.scopes),
                    when(r.created_at),
                    when(r.last_used_at),
                    when(r.revoked_at),
                    when(r.expires_at),
                ]
                for r in records
            ],
        )

    go()


@apikey_app.command("revoke")
def revoke(key_id: str = typer.Argument(..., help="The key's id (key_…).")) -> None:
    """Revoke a key at once: it answers 401 from the next request on."""
    settings = settings_or_exit()

    @run_async
    async def go() -> None:
        async with open_pool(settings) as pool, pool.acquire() as conn, conn.transaction():
            record = await api_keys.revoke_key(conn, key_id, datetime.now(UTC))
            if record is None:
                raise ExpectedFailure(f"no API key {key_id}")
            await _audit(
                conn, settings, AuditEventType.API_KEY_REVOKED, {"key_id": key_id, "name": record.name}
            )
        console.print(f"API key revoked: {key_id}")

    go()


@apikey_app.command("roll")
def roll(
    key_id: str = typer.Argument(..., help="The key's id (key_…)."),
    old_valid_for: str = typer.Option(
        "24h", "--old-valid-for", help="How long the old secret keeps working."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object on stdout."),
) -> None:
    """Issue a new secret (a new key id, same name and scopes); the old one works for a while."""
    settings = settings_or_exit()

    @run_async
    async def go() -> None:
        until = datetime.now(UTC) + parse_duration(old_valid_for)
        async with open_pool(settings) as pool, pool.acquire() as conn, conn.transaction():
            try:
                issued = await api_keys.roll_key(
                    conn,
                    pepper=settings.secret("api_key_pepper").encode(),
                    key_id=key_id,
                    old_valid_until=until,
                )
            except api_keys.KeyRevoked:
                raise ExpectedFailure(f"API key {key_id} is revoked: create a new one") from None
            if issued is None:
                raise ExpectedFailure(f"no API key {key_id}")
            await _audit(
                conn,
                settings,
                AuditEventType.API_KEY_CREATED,
                {
                    "key_id": issued.record.id,
                    "name": issued.record.name,
                    "prefix": issued.record.prefix,
                    "scopes": list(issued.record.scopes),
                    "rolled_from": key_id,
                    "old_valid_until": until.isoformat(),
                },
            )
        _print_issued(issued, as_json, f"rolled ({key_id} works until {until.isoformat(timespec='seconds')})")

    go()
