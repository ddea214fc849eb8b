"""Running the real `portalpay` command in a subprocess against the test dev server and database."""

import asyncio
import os
import secrets
from pathlib import Path

import asyncpg
from temporalio.client import Client

from infra.db import APP_ROLE, with_user
from tests.support import BIN_DIR, TEST_CODEC_KEYS, TestInvoice, create_invoice
from tests.support import test_settings as settings_for_tests

PORTALPAY = str(BIN_DIR / "portalpay")


def cli_env(client: Client, database_url: str, state_dir: Path, **extra: str) -> dict[str, str]:
    """The environment a deployed command would see, pointed at the test servers."""
    settings = settings_for_tests()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TEMPORAL_", "PORTALPAY_", "OTP_", "CODEC_", "WORKER_"))
        and not k.startswith("DATABASE_")
    }
    env.update(
        PORTALPAY_ENV="dev",
        PORTALPAY_STATE_DIR=str(state_dir),
        # Least privilege as deployed: the app's role, the owner only for migrations.
        DATABASE_URL=with_user(database_url, APP_ROLE),
        DATABASE_MIGRATION_URL=database_url,
        TEMPORAL_ADDRESS=client.service_client.config.target_host,
        TEMPORAL_NAMESPACE=client.namespace,
        CODEC_KEYS=TEST_CODEC_KEYS,
        OTP_HMAC_KEY=settings.secret("otp_hmac_key"),
        AUDIT_CHAIN_KEY=settings.secret("audit_chain_key"),
        STAFF_API_TOKEN=settings.secret("staff_api_token"),
        OPERATOR_API_TOKEN=settings.secret("operator_api_token"),
        LINK_SIGNING_KEY=settings.secret("link_signing_key"),
        COLUMNS="250",
        NO_COLOR="1",
    )
    env.update(extra)
    return env


async def run_cli(*args: str, env: dict[str, str], cwd: Path, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        PORTALPAY, *args, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def invoice_with_unique_contacts(pool: asyncpg.Pool) -> TestInvoice:
    """Unique destinations, so "the latest message to this phone" is this test's code."""
    tag = secrets.token_hex(5)
    return await create_invoice(
        pool, email=f"ops-{tag}@example.com", phone=f"+1555{int(tag, 16) % 10_000_000:07d}"
    )
