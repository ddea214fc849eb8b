"""The time-skipping test server, for the real 10-, 15- and 30-minute defaults.

It cannot run update-with-start and cannot skip time while an Update waits, so tests there start
the workflow directly and let time pass with `env.sleep` (or by awaiting the result) between
messages. It shares the session's PostgreSQL.

One server per test, not per session: its clock only moves forward, by every skip, while
activities read the wall clock (a code's expiry is minted there). A clock left 30 minutes ahead
by an earlier test would expire every new code on arrival. The server starts in well under a second.
"""

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from domain.channels import Channel
from infra.providers.delivery.console import ConsoleSender
from starters.workflow_client import AttemptGateway
from tests.support import Harness, test_settings
from workers.worker import WorkerDeps, build_worker


@dataclass
class SkippingWorker:
    env: WorkflowEnvironment
    pool: asyncpg.Pool
    task_queue: str


@pytest.fixture
async def skipping_worker(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool
) -> AsyncIterator[SkippingWorker]:
    settings = test_settings()
    console = ConsoleSender(db_pool)
    deps = WorkerDeps.from_settings(settings, db_pool, {Channel.EMAIL: console, Channel.SMS: console})
    task_queue = f"skip-{uuid.uuid4().hex[:12]}"
    worker = build_worker(time_skipping_env.client, task_queue, deps, graceful_shutdown=timedelta(seconds=5))
    async with worker:
        yield SkippingWorker(time_skipping_env, db_pool, task_queue)


SkippingHarnessFactory = Callable[..., contextlib.AbstractAsyncContextManager[Harness]]


@pytest.fixture
def skipping_harness_factory(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, app_pool: asyncpg.Pool
) -> SkippingHarnessFactory:
    """`harness_factory` on the time-skipping server: a worker with the given settings overrides and
    the portal's gateway on that server's client. The gateway's messages (updates, queries, signals)
    work there; `open` does not (update-with-start), so a test starts the run itself (`start_attempt`
    in tests/workflow/steps.py) and lets the attempt's timers pass by awaiting its result."""

    @contextlib.asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Harness]:
        settings = test_settings(**overrides)
        console = ConsoleSender(app_pool)
        deps = WorkerDeps.from_settings(settings, app_pool, {Channel.EMAIL: console, Channel.SMS: console})
        deps.bank_fingerprint_key = uuid.uuid4().bytes
        task_queue = f"skip-{uuid.uuid4().hex[:12]}"
        client = time_skipping_env.client
        gateway = AttemptGateway(client, app_pool, settings, task_queue=task_queue)
        worker = build_worker(client, task_queue, deps, graceful_shutdown=timedelta(seconds=5))
        async with worker:
            yield Harness(client, db_pool, settings, task_queue, gateway, app_pool)

    return start
