"""Helpers shared by the test suites: test data with unique ids, the outbox, the harness."""

import base64
import os
import secrets
import socket
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.client import Client

from domain.otp_code import find_code
from infra.settings import Settings
from starters.workflow_client import AttemptGateway

BIN_DIR = Path(sys.executable).parent
TEST_CODEC_KEYS = "test1:" + base64.b64encode(b"k" * 32).decode()
TEST_WEBHOOK_SECRET_KEYS = "whk1:" + base64.b64encode(b"w" * 32).decode()
GOOD_ROUTING = "011000015"  # passes the ABA checksum
GOOD_ACCOUNT = "000123456789"


# Ports tests listen on are chosen below Linux's ephemeral range (32768-60999), each xdist worker from
# its own slice: bind(0) anywhere on the machine, and the other worker, never hand out the same one
# between our check and the server's bind (issue 18: two lifecycle stacks took one port under -n 2).
_PORTS_LOW, _PORTS_HIGH = 20000, 32767


def free_port() -> int:
    """A port nothing listens on now, from this worker's slice of 20000-32767."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    workers = max(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1), 1)
    index = int(worker) % workers if worker.isdigit() else 0
    span = (_PORTS_HIGH - _PORTS_LOW) // workers
    low = _PORTS_LOW + index * span
    for _ in range(500):
        port = low + secrets.randbelow(span)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {low}-{low + span}")


def test_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "portalpay_env": "dev",
        "database_url": None,
        "staff_api_token": "staff-test-token",
        "operator_api_token": "operator-test-token",
        "link_signing_key": "link-signing-test-key",
        "otp_hmac_key": "otp-hmac-test-key",
        "audit_chain_key": "audit-chain-test-key",
        "codec_keys": TEST_CODEC_KEYS,
        "processor_webhook_secret": "processor-webhook-test-secret-0123456789",
        "bank_fingerprint_key": "bank-fingerprint-test-key-0123456789abcd",
        "webhook_secret_keys": TEST_WEBHOOK_SECRET_KEYS,
        "api_key_pepper": "api-key-pepper-test-0123456789abcdefgh",
        "otp_resend_cooldown_seconds": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


test_settings.__test__ = False  # type: ignore[attr-defined]  # a factory, not a test


UNIQUE = "<unique to the invoice>"


@dataclass
class TestInvoice:
    invoice_id: str
    customer_id: str
    payer_contact_id: str
    primary_contact_id: str
    email: str | None
    phone: str | None


# Messages name the customer and their readers take the first six-digit run as a code: no digits in names.
_DIGITS_AS_LETTERS = str.maketrans("0123456789", "OIZEASGTBN")


async def create_invoice(
    pool: asyncpg.Pool,
    *,
    kind: str = "invoice",
    amount_cents: int = 125000,
    email: str | None = UNIQUE,
    phone: str | None = UNIQUE,
    designate_payer: bool = True,
) -> TestInvoice:
    """A customer with a primary contact and (optionally) a distinct designated payer.

    By default the payer's email and phone are this invoice's own (a phone ending 0199), so reading
    "the latest message to this address" never finds another test's code, whatever the order.
    """
    tag = uuid.uuid4().hex[:10].upper()
    if email == UNIQUE:
        email = f"payer-{tag.lower()}@example.com"
    if phone == UNIQUE:
        phone = f"+1{secrets.randbelow(8) + 2}{secrets.randbelow(10**5):05d}0199"
    customer_id = f"C-T{tag}"
    primary = f"CT-{tag}-P"
    payer = f"CT-{tag}-X"
    invoice_id = f"{'DEP' if kind == 'deposit' else 'INV'}-T{tag}"
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO customers (id, name) VALUES ($1, $2)",
            customer_id,
            f"Customer {tag.translate(_DIGITS_AS_LETTERS)}",
        )
        await conn.execute(
            "INSERT INTO contacts (id, customer_id, name, email, phone, is_primary)"
            " VALUES ($1, $2, 'Primary Person', $3, $4, true)",
            primary,
            customer_id,
            f"primary-{tag.lower()}@example.com" if designate_payer else email,
            "+15555550100" if designate_payer else phone,
        )
        if designate_payer:
            await conn.execute(
                "INSERT INTO contacts (id, customer_id, name, email, phone, portal_payer)"
                " VALUES ($1, $2, 'Designated Payer', $3, $4, true)",
                payer,
                customer_id,
                email,
                phone,
            )
        await conn.execute(
            "INSERT INTO invoices (id, number, customer_id, kind, amount_cents, balance_cents)"
            " VALUES ($1, $1, $2, $3, $4, $4)",
            invoice_id,
            customer_id,
            kind,
            amount_cents,
        )
    return TestInvoice(invoice_id, customer_id, payer if designate_payer else primary, primary, email, phone)


async def outbox_messages(pool: asyncpg.Pool, to: str) -> list[asyncpg.Record]:
    return list(await pool.fetch("SELECT * FROM dev_outbox WHERE to_address = $1 ORDER BY id", to))


async def latest_code(pool: asyncpg.Pool, to: str) -> str:
    rows = await outbox_messages(pool, to)
    assert rows, f"no message in the outbox for {to}"
    code = find_code(rows[-1]["body"])
    assert code, "no code in the message"
    return code


def wrong_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


@dataclass
class Harness:
    client: Client
    pool: asyncpg.Pool
    settings: Settings
    task_queue: str
    gateway: AttemptGateway
    # What the product under test uses: the app's least-privilege role. `pool` is the owner's.
    app_pool: asyncpg.Pool | None = None
