"""A worker with the webhook activities on a fresh task queue, its relay loop, a receiver on
loopback, and helpers to make endpoints and write events the way the product does."""

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from temporalio.client import Client

from domain.events import EventType
from infra.stores import webhooks as store
from infra.stores.events import record_event
from infra.webhook_address import AddressRules, Resolver
from infra.webhook_secrets import SecretBox
from infra.webhook_settings import WebhookConfig, secret_box
from tests.api_v1.conftest import api, api_factory  # noqa: F401 - fixtures for the API tests
from tests.conftest import HarnessFactory
from tests.lifecycle.services import serve
from tests.portal.conftest import portal_factory  # noqa: F401 - fixture
from tests.support import Harness
from tools.standins.webhook_receiver import WebhookReceiver
from workers.webhook_relay_loop import run_webhook_relay
from workers.worker import WorkerDeps

# Short waits so a test sees every retry; the real schedule is checked on the time-skipping server.
FAST_RETRIES: tuple[float, ...] = (0.3, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)


@dataclass
class WebhookStack:
    harness: Harness
    box: SecretBox
    endpoints: list[str] = field(default_factory=list)

    @property
    def pool(self) -> asyncpg.Pool:
        assert self.harness.app_pool is not None
        return self.harness.app_pool

    @property
    def client(self) -> Client:
        return self.harness.client

    async def endpoint(self, url: str, events: list[str] | None = None) -> tuple[str, str]:
        async with self.pool.acquire() as conn:
            endpoint, secret = await store.create_endpoint(
                conn, self.box, url=url, events=events or ["*"], created_by="test"
            )
        self.endpoints.append(endpoint.id)
        return endpoint.id, secret

    async def event(self, event_type: EventType = EventType.INVOICE_PAID, **fields: Any) -> str:
        async with self.pool.acquire() as conn, conn.transaction():
            return await record_event(
                conn, event_type, {"object": "invoice", "id": uuid.uuid4().hex, **fields}
            )


StackFactory = Callable[..., contextlib.AbstractAsyncContextManager[WebhookStack]]


@pytest.fixture
def webhook_stack_factory(harness_factory: HarnessFactory) -> StackFactory:
    @contextlib.asynccontextmanager
    async def start(
        *,
        retries: tuple[float, ...] = FAST_RETRIES,
        relay: bool = True,
        resolver: Resolver | None = None,
        **config: Any,
    ) -> AsyncIterator[WebhookStack]:
        def wire(deps: WorkerDeps) -> WorkerDeps:
            deps.webhooks = dataclasses.replace(
                WebhookConfig(address_rules=AddressRules(dev=True)), retry_delays_seconds=retries, **config
            )
            if resolver is not None:
                deps.webhook_resolver = resolver
            return deps

        async with harness_factory(wrap_deps=wire) as h:
            stack = WebhookStack(h, secret_box(h.settings))
            stop = asyncio.Event()
            loop = (
                asyncio.create_task(
                    run_webhook_relay(h.app_pool, h.client, h.task_queue, every=0.2, stop=stop)
                )
                if relay
                else None
            )
            try:
                yield stack
            finally:
                stop.set()
                if loop is not None:
                    await loop
                async with stack.pool.acquire() as conn:
                    for endpoint_id in stack.endpoints:
                        await store.delete_endpoint(conn, endpoint_id)

    return start


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[WebhookReceiver, str]]:
    rec = WebhookReceiver()
    async with serve(rec.app) as base:
        yield rec, f"{base}/hook"
