"""The processor service restarted and the worker gone mid-life: nothing lost, nothing applied twice."""

import contextlib
import uuid
from datetime import timedelta

import asyncpg
from temporalio.client import Client

from domain.channels import Channel
from infra.providers.delivery.console import ConsoleSender
from infra.providers.processor.client import HttpProcessorClient
from sandbox_processor.app import create_processor_app
from starters.portal.app import build_portal_app
from starters.workflow_client import AttemptGateway
from tests.lifecycle.conftest import lifecycle_config
from tests.lifecycle.services import free_port, serve, wait_for
from tests.lifecycle.stack import SECRET, Stack
from tests.lifecycle.test_test_accounts import accept_debit
from tests.support import Harness, create_invoice, test_settings
from tests.workflow.steps import audit_rows, unique_email
from workers.worker import WorkerDeps, build_worker


async def test_worker_gone_and_processor_restarted_mid_life(
    temporal_client: Client, db_pool: asyncpg.Pool
) -> None:
    portal_port, processor_port = free_port(), free_port()
    task_queue = f"restart-{uuid.uuid4().hex[:12]}"
    processor_settings = test_settings(
        processor_webhook_secret=SECRET,
        sandbox_instance=uuid.uuid4().hex,
        processor_webhook_url=f"http://127.0.0.1:{portal_port}/webhooks/processor/sandbox",
        sandbox_tick_seconds=0.1,
        sandbox_webhook_retry_seconds=0.2,
        sandbox_settlement_seconds=0.5,
        sandbox_late_return_seconds=4.0,
    )
    settings = test_settings(processor_webhook_secret=SECRET)
    processor_url = f"http://127.0.0.1:{processor_port}"
    client = HttpProcessorClient(processor_url, timeout=5)
    console = ConsoleSender(db_pool)
    deps = WorkerDeps(
        pool=db_pool,
        senders={Channel.EMAIL: console, Channel.SMS: console},
        otp_hmac_key=b"otp",
        audit_key=settings.audit_key(),
        processor=client,
        lifecycle=lifecycle_config(),
    )
    gateway = AttemptGateway(temporal_client, db_pool, settings, task_queue=task_queue)
    stack = Stack(Harness(temporal_client, db_pool, settings, task_queue, gateway), "", processor_url, client)
    app = build_portal_app(settings, temporal_client, db_pool, task_queue=task_queue)

    async def status(payment_id: str) -> str:
        return str(await db_pool.fetchval("SELECT status FROM payments WHERE id = $1", payment_id))

    async with contextlib.AsyncExitStack() as outer:
        await outer.enter_async_context(serve(app, port=portal_port))
        outer.push_async_callback(client.aclose)
        processor_up = serve(create_processor_app(processor_settings, db_pool), port=processor_port)
        worker = build_worker(temporal_client, task_queue, deps, graceful_shutdown=timedelta(seconds=5))
        async with processor_up, worker:
            inv = await create_invoice(db_pool, amount_cents=48000, email=unique_email())
            payment_id = await accept_debit(stack, inv, "000555555553", no_poll=True)
            await wait_for(lambda: status(payment_id), lambda s: s == "settled", what="settled")
        # The worker is gone; the processor goes down too, with the return still to come.
        async with serve(create_processor_app(processor_settings, db_pool), port=processor_port):

            async def returned_stored() -> int:
                return int(
                    await db_pool.fetchval(
                        "SELECT count(*) FROM processor_events WHERE payment_id = $1 AND type = 'debit.returned'"
                        " AND delivered_at IS NOT NULL",
                        payment_id,
                    )
                )

            # The restarted processor returns the debit and its webhook is taken in and signalled...
            await wait_for(returned_stored, lambda n: n == 1, timeout=30, what="return webhook taken in")
            assert await status(payment_id) == "settled"  # ...but no worker applied it yet.
            async with build_worker(
                temporal_client, task_queue, deps, graceful_shutdown=timedelta(seconds=5)
            ):
                await wait_for(lambda: status(payment_id), lambda s: s == "returned", what="returned")
                await temporal_client.get_workflow_handle(f"ach-payment-{payment_id}").result()
    types = [r["event_type"] for r in await audit_rows(db_pool, inv.invoice_id)]
    assert types == ["PAYMENT_SETTLED", "PAYMENT_RETURNED", "BANK_ACCOUNT_BLOCKED"]
    history = await db_pool.fetch(
        "SELECT status FROM payment_status_history WHERE payment_id = $1", payment_id
    )
    assert sorted(h["status"] for h in history) == ["processing", "returned", "settled"]
    balance = await db_pool.fetchval("SELECT balance_cents FROM invoices WHERE id = $1", inv.invoice_id)
    assert balance == 48000  # restored once, not twice
