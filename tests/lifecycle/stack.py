"""A whole lifecycle stack on loopback: a worker (dev server), the portal over HTTP, the sandbox
processor over HTTP delivering signed webhooks to the portal."""

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg

from infra.providers.processor.client import HttpProcessorClient
from sandbox_processor.app import create_processor_app
from starters.portal.app import build_portal_app
from tests.conftest import HarnessFactory
from tests.lifecycle.conftest import lifecycle_config
from tests.lifecycle.services import free_port, serve
from tests.support import Harness, test_settings

SECRET = "lifecycle-stack-webhook-secret-0123456789"


@dataclass
class Stack:
    harness: Harness
    portal_url: str
    processor_url: str
    processor: HttpProcessorClient
    # The worker's BANK_FINGERPRINT_KEY (fresh per harness), for tests that write rows as it would.
    fingerprint_key: bytes = b""

    @property
    def pool(self) -> asyncpg.Pool:
        return self.harness.pool


@contextlib.asynccontextmanager
async def lifecycle_stack(
    harness_factory: HarnessFactory, db_pool: asyncpg.Pool, **processor_overrides: Any
) -> AsyncIterator[Stack]:
    portal_port = free_port()
    processor_settings = test_settings(
        processor_webhook_secret=SECRET,
        sandbox_instance=uuid.uuid4().hex,
        processor_webhook_url=f"http://127.0.0.1:{portal_port}/webhooks/processor/sandbox",
        sandbox_tick_seconds=0.1,
        sandbox_webhook_retry_seconds=0.2,
        **{"sandbox_settlement_seconds": 1.0, "sandbox_late_return_seconds": 1.0, **processor_overrides},
    )
    async with contextlib.AsyncExitStack() as stack:
        processor_url = await stack.enter_async_context(
            serve(create_processor_app(processor_settings, db_pool))
        )
        client = HttpProcessorClient(processor_url, timeout=5)
        stack.push_async_callback(client.aclose)

        keys: list[bytes] = []

        def wire(deps: Any) -> Any:
            keys.append(deps.bank_fingerprint_key)
            deps.lifecycle = lifecycle_config()
            deps.processor = client
            return deps

        harness = await stack.enter_async_context(
            harness_factory(
                processor_webhook_secret=SECRET, processor_sandbox_url=processor_url, wrap_deps=wire
            )
        )
        app = build_portal_app(harness.settings, harness.client, harness.pool, task_queue=harness.task_queue)
        portal_url = await stack.enter_async_context(serve(app, port=portal_port))
        yield Stack(harness, portal_url, processor_url, client, keys[0])


async def settle_now(pool: asyncpg.Pool, invoice_id: str) -> None:
    """Move the invoice's processing debit's settlement date to now in the sandbox service's ledger.

    Tests that must see a payment `processing` first give the sandbox a settlement an hour away, then
    bring it forward here instead of guessing how long the first checks take; the service's clock
    settles it on its next tick and its webhook reaches the portal.
    """
    moved = await pool.execute(
        "UPDATE sandbox_debits SET settle_at = now() WHERE status = 'processing' AND id IN"
        " (SELECT processor_reference FROM payments WHERE invoice_id = $1)",
        invoice_id,
    )
    assert moved == "UPDATE 1", f"no processing debit for {invoice_id} ({moved})"
