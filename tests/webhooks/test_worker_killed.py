"""A `portalpay worker` SIGKILLed while a receiver holds its request: another worker takes the try
over (heartbeat timeout) and the receiver sees at most one duplicate, under the same webhook-id."""

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import Client

from domain.events import EventType
from domain.webhooks import TryOutcome
from infra.db import APP_ROLE, with_user
from infra.stores import webhooks as store
from infra.stores.events import record_event
from infra.webhook_settings import secret_box
from tests.lifecycle.services import serve, wait_for
from tests.support import BIN_DIR, TEST_CODEC_KEYS, TEST_WEBHOOK_SECRET_KEYS, test_settings
from tests.webhooks.support import delivery_outcome, tries
from tools.standins.webhook_receiver import WebhookReceiver

StartWorker = Callable[[], Awaitable[asyncio.subprocess.Process]]


@pytest.fixture
async def worker_processes(
    temporal_client: Client, database_url: str, tmp_path: Path, processor_url: str
) -> AsyncIterator[StartWorker]:
    """`portalpay worker` processes (relay loop included) configured only through the environment."""
    settings = test_settings()
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("TEMPORAL_", "OTP_", "CODEC_", "PORTALPAY_", "DATABASE_URL", "WEBHOOK_"))
    }
    env.update(
        TEMPORAL_ADDRESS=temporal_client.service_client.config.target_host,
        TEMPORAL_NAMESPACE=temporal_client.namespace,
        TEMPORAL_TASK_QUEUE=f"webhook-kill-{uuid.uuid4().hex[:12]}",
        DATABASE_URL=with_user(database_url, APP_ROLE),
        PORTALPAY_ENV="dev",
        PORTALPAY_STATE_DIR=str(tmp_path / "state"),
        OTP_HMAC_KEY=settings.secret("otp_hmac_key"),
        AUDIT_CHAIN_KEY=settings.secret("audit_chain_key"),
        CODEC_KEYS=TEST_CODEC_KEYS,
        WEBHOOK_SECRET_KEYS=TEST_WEBHOOK_SECRET_KEYS,
        WEBHOOK_RETRY_SCHEDULE="1s,1s,1s",
        STAFF_API_TOKEN=settings.secret("staff_api_token"),
        OPERATOR_API_TOKEN=settings.secret("operator_api_token"),
        LINK_SIGNING_KEY=settings.secret("link_signing_key"),
        EMAIL_PROVIDER="console",
        SMS_PROVIDER="console",
        PROCESSOR_SANDBOX_URL=processor_url,
    )
    started: list[asyncio.subprocess.Process] = []

    async def start() -> asyncio.subprocess.Process:
        log = (tmp_path / f"worker-{len(started)}.log").open("wb")
        proc = await asyncio.create_subprocess_exec(
            str(BIN_DIR / "portalpay"), "worker", env=env, cwd=tmp_path, stdout=log, stderr=log
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_worker_killed_mid_delivery_gives_at_most_one_duplicate(
    temporal_client: Client, db_pool: asyncpg.Pool, worker_processes: StartWorker
) -> None:
    rec = WebhookReceiver(hang_seconds=20.0, hang_tries=1)
    box = secret_box(test_settings())
    async with serve(rec.app) as base:
        async with db_pool.acquire() as conn:
            endpoint, secret = await store.create_endpoint(
                conn, box, url=f"{base}/hook", events=["payment.settled"], created_by="test"
            )
        rec.secrets = [secret]
        try:
            first = await worker_processes()
            async with db_pool.acquire() as conn, conn.transaction():
                event_id = await record_event(conn, EventType.PAYMENT_SETTLED, {"object": "payment"})
            # The first try is in the receiver's hands when the worker dies.
            await asyncio.wait_for(rec.arrived.wait(), timeout=60)
            first.send_signal(signal.SIGKILL)
            assert await first.wait() == -signal.SIGKILL

            await worker_processes()
            outcome = await delivery_outcome(temporal_client, endpoint.id, event_id, timeout=90)
            await wait_for(lambda: tries(db_pool, endpoint.id), bool, what="the recorded try")
        finally:
            async with db_pool.acquire() as conn:
                await store.delete_endpoint(conn, endpoint.id)
    assert outcome.outcome is TryOutcome.DELIVERED and outcome.tries == 1
    # The killed try and the one that took it over: one duplicate, never more.
    assert len(rec.tries) == 2
    assert {t.webhook_id for t in rec.tries} == {event_id}
    assert all(t.verified_with == [0] for t in rec.tries)
    recorded = await tries(db_pool, endpoint.id)
    assert [(t["attempt"], t["outcome"]) for t in recorded] == [(1, "delivered")]
