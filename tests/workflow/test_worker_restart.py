"""A worker process killed mid-attempt (after the code was sent): another one finishes the attempt."""

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import Client

from domain.channels import Channel
from domain.status import PaymentStatus
from infra.db import APP_ROLE, with_user
from infra.stores.audit_trail import chain_ok
from starters.workflow_client import AttemptGateway
from tests.support import BIN_DIR, TEST_CODEC_KEYS, Harness, test_settings
from tests.workflow.steps import Attempt, audit_rows, new_invoice, outbox_count

StartWorker = Callable[..., Awaitable[asyncio.subprocess.Process]]


@pytest.fixture
async def worker_processes(
    temporal_client: Client, database_url: str, tmp_path: Path, processor_url: str
) -> AsyncIterator[tuple[str, StartWorker]]:
    """`portalpay worker` processes on a fresh task queue, configured only through the environment."""
    settings = test_settings()
    task_queue = f"restart-{uuid.uuid4().hex[:12]}"
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("TEMPORAL_", "OTP_", "CODEC_", "PORTALPAY_", "DATABASE_URL"))
    }
    env.update(
        TEMPORAL_ADDRESS=temporal_client.service_client.config.target_host,
        TEMPORAL_NAMESPACE=temporal_client.namespace,
        TEMPORAL_TASK_QUEUE=task_queue,
        DATABASE_URL=with_user(database_url, APP_ROLE),
        PORTALPAY_ENV="dev",
        PORTALPAY_STATE_DIR=str(tmp_path / "state"),
        OTP_HMAC_KEY=settings.secret("otp_hmac_key"),
        AUDIT_CHAIN_KEY=settings.secret("audit_chain_key"),
        CODEC_KEYS=TEST_CODEC_KEYS,
        STAFF_API_TOKEN=settings.secret("staff_api_token"),
        OPERATOR_API_TOKEN=settings.secret("operator_api_token"),
        LINK_SIGNING_KEY=settings.secret("link_signing_key"),
        EMAIL_PROVIDER="console",
        SMS_PROVIDER="console",
        PROCESSOR_SANDBOX_URL=processor_url,
    )
    started: list[asyncio.subprocess.Process] = []

    async def start(**extra_env: str) -> asyncio.subprocess.Process:
        log = (tmp_path / f"worker-{len(started)}.log").open("wb")
        proc = await asyncio.create_subprocess_exec(
            str(BIN_DIR / "portalpay"),
            "worker",
            env={**env, **extra_env},
            cwd=tmp_path,
            stdout=log,
            stderr=log,
        )
        started.append(proc)
        return proc

    yield task_queue, start
    for proc in started:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_killed_worker_after_code_sent_resumes_on_another(
    temporal_client: Client,
    db_pool: asyncpg.Pool,
    worker_processes: tuple[str, StartWorker],
    tmp_path: Path,
) -> None:
    task_queue, start_worker = worker_processes
    settings = test_settings()
    harness = Harness(
        temporal_client,
        db_pool,
        settings,
        task_queue,
        AttemptGateway(temporal_client, db_pool, settings, task_queue=task_queue),
    )
    inv = await new_invoice(db_pool)

    # The worker to be killed keeps no workflow cache (WORKER_MAX_CACHED_WORKFLOWS, a setting the
    # product reads), so it takes no sticky queue: the server's wait for a dead worker's sticky queue
    # (the SDK's 10 s schedule-to-start) is Temporal's, not ours. The survivor runs as deployed and
    # still replays the attempt from history, having never seen it.
    first = await start_worker(WORKER_MAX_CACHED_WORKFLOWS="0")
    async with asyncio.timeout(60):
        attempt = await Attempt.open(harness, inv)
        _, code = await attempt.send_and_read(Channel.SMS)
    assert (await attempt.current()).status is PaymentStatus.AWAITING_CODE
    assert await outbox_count(db_pool, attempt.run_id) == 1

    first.send_signal(signal.SIGKILL)
    assert await first.wait() == -signal.SIGKILL

    second = await start_worker()
    async with asyncio.timeout(60):
        assert (await attempt.verify(code)).verified
        paid = await attempt.pay()
        outcome = await attempt.outcome()
    assert paid.status is PaymentStatus.PAID and outcome.status is PaymentStatus.PAID

    second.send_signal(signal.SIGTERM)  # a clean stop: the worker drains and exits 0
    async with asyncio.timeout(30):
        assert await second.wait() == 0, (tmp_path / "worker-1.log").read_text()

    assert await db_pool.fetchval("SELECT count(*) FROM payments WHERE invoice_id = $1", inv.invoice_id) == 1
    assert await outbox_count(db_pool, attempt.run_id) == 1
    rows = await audit_rows(db_pool, inv.invoice_id)
    assert [r["event_type"] for r in rows] == [
        "ATTEMPT_STARTED",
        "PAYER_RESOLVED",
        "OTP_SENT",
        "OTP_VERIFIED",
        "ACCOUNT_VALIDATED",  # SPEC §9: first debit from this account
        "PAYMENT_SUBMITTED",
        "PAYMENT_ACCEPTED",
    ]
    assert len({r["event_key"] for r in rows}) == len(rows)
    assert await chain_ok(db_pool, inv.invoice_id, key=settings.audit_key())
