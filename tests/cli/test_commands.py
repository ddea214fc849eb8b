"""The `portalpay` commands as a person runs them against the test servers: the real executable in a
subprocess for each family and where the environment is the point, the Typer app in-process for the rest."""

import json
import os
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import Client

from domain.channels import Channel
from domain.policy import InvoiceKind, PaymentMethod
from domain.status import PaymentStatus
from infra.settings import load_settings
from tests.cli.stack import free_port, fresh_database, one_line_error
from tests.conftest import HarnessFactory
from tests.ops.cli_process import cli_env, run_cli, run_cli_in_process
from tests.support import TEST_CODEC_KEYS, create_invoice
from tests.workflow.steps import BROWSER

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
DEMO_TABLES = {
    "customers": "SELECT id, name FROM customers ORDER BY id",
    "contacts": "SELECT id, customer_id, name, email, phone, is_primary, portal_payer FROM contacts ORDER BY id",
    "invoices": "SELECT id, number, customer_id, kind, amount_cents, balance_cents FROM invoices ORDER BY id",
}


async def _rows(url: str) -> dict[str, list[tuple[object, ...]]]:
    conn = await asyncpg.connect(url)
    try:
        return {table: [tuple(r) for r in await conn.fetch(sql)] for table, sql in DEMO_TABLES.items()}
    finally:
        await conn.close()


async def test_db_migrate_twice_then_demo_seed_twice(
    temporal_client: Client, db_pool: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    url = await fresh_database(db_pool, database_url)
    env = cli_env(temporal_client, url, tmp_path)

    rc, out, err = await run_cli("db", "migrate", env=env, cwd=tmp_path)
    assert rc == 0, err
    assert out.startswith("migrations applied: 0001_initial")
    rc, out, err = await run_cli_in_process("db", "migrate", env=env, cwd=tmp_path)
    assert rc == 0, err
    assert out.strip() == "migrations applied: none (up to date)"

    rc, out, err = await run_cli("demo", "seed", env=env, cwd=tmp_path)
    assert rc == 0, err
    first = await _rows(url)
    assert ("INV-1001", "INV-1001", "C-1001", "invoice", 125000, 125000) in first["invoices"]
    assert len(first["customers"]) == 4 and len(first["invoices"]) == 5
    payers = [row for row in first["contacts"] if row[6]]
    assert [(row[2], row[3]) for row in payers] == [("Charles Babbage", "charles@example.com")]

    rc, out, err = await run_cli_in_process("demo", "seed", env=env, cwd=tmp_path)
    assert rc == 0, err
    assert await _rows(url) == first  # idempotent: the same rows, none added or changed


async def test_unreachable_postgresql_is_one_line(temporal_client: Client, tmp_path: Path) -> None:
    nowhere = f"postgresql://portalpay:secret@127.0.0.1:{free_port()}/portalpay"
    env = cli_env(temporal_client, nowhere, tmp_path)
    for command in (("db", "migrate"), ("demo", "seed"), ("ops", "show", "INV-1001")):
        rc, _out, err = await run_cli_in_process(*command, env=env, cwd=tmp_path)
        assert rc != 0, command
        assert "PostgreSQL" in one_line_error(err), err
        assert "secret" not in err  # the password in DATABASE_URL is never echoed


async def test_unreachable_temporal_is_one_line(
    temporal_client: Client, database_url: str, tmp_path: Path
) -> None:
    env = cli_env(temporal_client, database_url, tmp_path, TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}")
    for command in (
        ("ops", "stuck"),
        ("try", "INV-1001"),
        ("replay", "--workflow-id", "pay-invoice-INV-1001"),
    ):
        rc, _out, err = await run_cli_in_process(*command, env=env, cwd=tmp_path, timeout=120)
        assert rc != 0, command
        assert "Temporal" in one_line_error(err), err


@pytest.mark.parametrize("command", [("worker",), ("portal",), ("ops", "stuck")])
async def test_prod_refuses_to_start_without_its_secrets(tmp_path: Path, command: tuple[str, ...]) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TEMPORAL_", "PORTALPAY_", "OTP_", "CODEC_", "STAFF_", "OPERATOR_", "LINK_"))
    }
    # Real providers and an https address, so the missing secrets are what prod refuses here.
    env.update(
        PORTALPAY_ENV="prod",
        PORTALPAY_STATE_DIR=str(tmp_path / "state"),
        NO_COLOR="1",
        EMAIL_PROVIDER="sendgrid",
        SENDGRID_API_KEY="SG." + "k" * 40,
        SENDGRID_FROM="billing@example.com",
        SMS_PROVIDER="twilio",
        TWILIO_ACCOUNT_SID="AC" + "0" * 32,
        TWILIO_AUTH_TOKEN="t" * 32,
        TWILIO_FROM="+15555550100",
        PORTAL_BASE_URL="https://pay.example.com",
    )
    rc, _out, err = await run_cli(*command, env=env, cwd=tmp_path)
    assert rc == 1
    line = one_line_error(err)
    assert "STAFF_API_TOKEN" in line or "required" in line.lower(), line
    assert not (tmp_path / "state" / "secrets.json").exists()  # prod never generates its own secrets


async def test_replay_exits_non_zero_on_a_non_deterministic_history(
    temporal_client: Client, database_url: str, tmp_path: Path
) -> None:
    recorded = HISTORIES / "paid_by_sms.json"
    history = json.loads(recorded.read_text())
    # The code schedules resolve_payer first; this history says another activity ran there.
    scheduled = next(e for e in history["events"] if "activityTaskScheduledEventAttributes" in e)
    scheduled["activityTaskScheduledEventAttributes"]["activityType"]["name"] = "resolve_payer_before_v2"
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(history))
    env = cli_env(temporal_client, database_url, tmp_path, CODEC_KEYS=TEST_CODEC_KEYS)

    rc, out, err = await run_cli_in_process("replay", str(recorded), env=env, cwd=tmp_path)
    assert rc == 0, out + err
    assert out.strip().splitlines()[-1] == "1 replayed, 0 failed"

    rc, out, err = await run_cli_in_process("replay", str(changed), env=env, cwd=tmp_path)
    assert rc == 1, out + err
    lines = out.strip().splitlines()
    assert lines[-1] == "1 replayed, 1 failed"
    assert not lines[0].startswith("ok") and "resolve_payer" in out
    assert "Traceback" not in out + err


def test_otp_policy_settings_are_parsed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PORTALPAY_ENV", "dev")
    monkeypatch.chdir(tmp_path)  # no .env or dev.env of this checkout
    monkeypatch.setenv("OTP_REQUIRED_METHODS", " ach , ")
    monkeypatch.setenv("OTP_EXEMPT_KINDS", "deposit,invoice")
    policy = load_settings().otp_policy
    assert policy.required_methods == [PaymentMethod.ACH]
    assert policy.exempt_kinds == [InvoiceKind.DEPOSIT, InvoiceKind.INVOICE]
    monkeypatch.setenv("OTP_REQUIRED_METHODS", "")
    monkeypatch.setenv("OTP_EXEMPT_KINDS", "")
    policy = load_settings().otp_policy
    assert policy.required_methods == [] and policy.exempt_kinds == []
    monkeypatch.delenv("OTP_REQUIRED_METHODS")
    monkeypatch.delenv("OTP_EXEMPT_KINDS")
    policy = load_settings().otp_policy
    assert policy.required_methods == [PaymentMethod.ECHECK, PaymentMethod.ACH]
    assert policy.exempt_kinds == [InvoiceKind.DEPOSIT]


@pytest.mark.parametrize(
    ("methods", "exempt", "kind", "needs_code"),
    [
        ("echeck,ach", "deposit", "invoice", True),
        ("echeck,ach", "deposit", "deposit", False),
        ("echeck,ach", "", "deposit", True),  # a bank partner that wants OTP on deposits too
        ("echeck,ach", "deposit,invoice", "invoice", False),
        ("", "deposit", "invoice", False),  # no method needs it
    ],
)
async def test_otp_policy_settings_decide_whether_an_attempt_asks_for_a_code(
    harness_factory: HarnessFactory, methods: str, exempt: str, kind: str, needs_code: bool
) -> None:
    async with harness_factory(otp_required_methods=methods, otp_exempt_kinds=exempt) as h:
        inv = await create_invoice(h.pool, kind=kind)
        state = await h.gateway.open(inv.invoice_id, BROWSER)
        assert state.otp_required is needs_code
        if needs_code:
            assert state.status is PaymentStatus.CHOOSING_CHANNEL
            assert {c.channel for c in state.channels} == {Channel.EMAIL, Channel.SMS}
        else:
            assert state.status is PaymentStatus.AWAITING_PAYMENT
