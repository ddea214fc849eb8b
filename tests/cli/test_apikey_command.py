"""`portalpay apikey create|list|revoke|roll` (SPEC §12) as a person runs it: the first `create` of
each test in a subprocess (the installed executable), the rest in-process (`run_cli_in_process`)."""

import json
from pathlib import Path

import asyncpg
from temporalio.client import Client

from infra.stores import api_keys
from tests.ops.cli_process import cli_env, run_cli, run_cli_in_process

PEPPER = "cli-test-pepper-0123456789abcdefghijkl"


async def test_create_list_roll_revoke(
    temporal_client: Client, db_pool: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    env = cli_env(temporal_client, database_url, tmp_path, API_KEY_PEPPER=PEPPER)
    rc, out, err = await run_cli(
        "apikey", "create", "--name", "CRM sync", "--scope", "events:read", "--json", env=env, cwd=tmp_path
    )
    assert rc == 0, err
    created = json.loads(out)
    secret = created["secret"]
    assert secret.startswith("ppk_test_") and len(secret) >= len("ppk_test_") + 32
    assert created["scopes"] == ["events:read"] and secret.startswith(created["prefix"])
    found = await api_keys.find_by_secret(db_pool, pepper=PEPPER.encode(), secret=secret)
    assert found is not None and found.id == created["id"]

    rc, out, err = await run_cli_in_process(
        "apikey", "create", "--name", "all", "--json", env=env, cwd=tmp_path
    )
    assert rc == 0, err
    assert sorted(json.loads(out)["scopes"]) == sorted(
        [
            "customers:write",
            "invoices:write",
            "payments:read",
            "events:read",
            "webhooks:write",
            "imports:write",
        ]
    )
    rc, out, err = await run_cli_in_process(
        "apikey", "create", "--name", "x", "--scope", "root", env=env, cwd=tmp_path
    )
    assert rc == 1 and "unknown scope" in err

    rc, out, err = await run_cli_in_process("apikey", "list", "--json", env=env, cwd=tmp_path)
    assert rc == 0, err
    listed = {k["id"]: k for k in json.loads(out)}
    assert created["id"] in listed and secret not in out and secret[len("ppk_test_") :] not in out
    rc, out, err = await run_cli_in_process("apikey", "list", env=env, cwd=tmp_path)
    assert rc == 0 and created["prefix"] in out and secret not in out

    rc, out, err = await run_cli_in_process(
        "apikey", "roll", created["id"], "--old-valid-for", "2h", "--json", env=env, cwd=tmp_path
    )
    assert rc == 0, err
    rolled = json.loads(out)
    assert rolled["rolled_from"] == created["id"] and rolled["secret"] != secret
    old = await api_keys.get_key(db_pool, created["id"])
    assert old is not None and old.expires_at is not None and old.revoked_at is None

    rc, out, err = await run_cli_in_process("apikey", "revoke", rolled["id"], env=env, cwd=tmp_path)
    assert rc == 0, err
    revoked = await api_keys.get_key(db_pool, rolled["id"])
    assert revoked is not None and revoked.revoked_at is not None
    rc, out, err = await run_cli_in_process(
        "apikey", "revoke", "key_nosuchkey000000000", env=env, cwd=tmp_path
    )
    assert rc == 1 and "no API key" in err
    audited = await db_pool.fetch(
        "SELECT event_type, actor, details FROM audit_events WHERE details->>'key_id' = ANY($1::text[]) ORDER BY id",
        [created["id"], rolled["id"]],
    )
    assert [(r["event_type"], r["actor"]) for r in audited] == [
        ("API_KEY_CREATED", "cli"),
        ("API_KEY_CREATED", "cli"),
        ("API_KEY_REVOKED", "cli"),
    ]
    assert secret not in " ".join(str(r["details"]) for r in audited)


async def test_prod_keys_are_live_keys(
    temporal_client: Client, db_pool: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    env = cli_env(temporal_client, database_url, tmp_path, API_KEY_PEPPER=PEPPER, PORTALPAY_ENV="prod")
    rc, out, err = await run_cli("apikey", "create", "--name", "books", "--json", env=env, cwd=tmp_path)
    assert rc == 0, err
    secret = json.loads(out)["secret"]
    assert secret.startswith("ppk_live_") and len(secret) >= len("ppk_live_") + 32
    env.pop("API_KEY_PEPPER")
    rc, out, err = await run_cli_in_process("apikey", "create", "--name", "books", env=env, cwd=tmp_path)
    assert rc == 1 and "API_KEY_PEPPER is required" in err
