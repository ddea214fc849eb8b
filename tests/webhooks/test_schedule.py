"""The retry schedule as durable timers (time-skipping server), the disable-after rule with the
staff email, and the sweep that dispatches what no relay loop did."""

import contextlib
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.client import Client
from temporalio.service import RPCError

from domain.channels import Channel
from domain.events import EventType
from domain.webhooks import (
    DEFAULT_RETRY_DELAYS_SECONDS,
    TryOutcome,
    WebhookDeliveryInput,
    delivery_workflow_id,
)
from infra.providers.delivery.console import ConsoleSender
from infra.stores import webhooks as store
from infra.stores.events import record_event
from infra.webhook_address import AddressRules
from infra.webhook_settings import WebhookConfig, secret_box
from tests.lifecycle.services import wait_for
from tests.support import test_settings
from tests.webhooks.conftest import StackFactory
from tests.webhooks.support import delivery_outcome, tries
from tools.standins.webhook_receiver import WebhookReceiver
from workers.schedules import ensure_webhook_sweep_schedule
from workers.worker import WorkerDeps, build_worker
from workflows.webhook_delivery import SWEEP_SCHEDULE_ID, WebhookDeliveryWorkflow, WebhookSweepWorkflow

NOBODY_LISTENS = "http://127.0.0.1:9/hook"  # the discard port: every try is refused at once


async def test_the_default_schedule_retries_eight_times_over_more_than_a_day(
    time_skipping_env: Any, db_pool: asyncpg.Pool
) -> None:
    env = time_skipping_env
    settings = test_settings()
    console = ConsoleSender(db_pool)
    deps = WorkerDeps(
        pool=db_pool,
        senders={Channel.EMAIL: console, Channel.SMS: console},
        otp_hmac_key=b"otp",
        audit_key=settings.audit_key(),
        webhook_box=secret_box(settings),
        webhooks=WebhookConfig(address_rules=AddressRules(dev=True)),
    )
    async with db_pool.acquire() as conn:
        endpoint, _ = await store.create_endpoint(
            conn, secret_box(settings), url=NOBODY_LISTENS, events=["*"], created_by="test"
        )
        event_id = await record_event(conn, EventType.INVOICE_PAID, {"object": "invoice"})
    task_queue = f"webhook-{uuid.uuid4().hex[:12]}"
    try:
        async with build_worker(env.client, task_queue, deps, graceful_shutdown=timedelta(seconds=5)):
            handle = await env.client.start_workflow(
                WebhookDeliveryWorkflow.run,
                WebhookDeliveryInput(endpoint_id=endpoint.id, event_id=event_id),
                id=delivery_workflow_id(endpoint.id, event_id),
                task_queue=task_queue,
            )
            outcome = await handle.result()
            timers = [
                e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta().total_seconds()
                async for e in handle.fetch_history_events()
                if e.event_type == HistoryEventType.EVENT_TYPE_TIMER_STARTED
            ]
    finally:
        async with db_pool.acquire() as conn:
            await store.delete_endpoint(conn, endpoint.id)
    # The first try and 8 retries, the first within 10 s, spanning more than 24 h; a COMPLETED run.
    assert outcome.outcome is TryOutcome.FAILED and outcome.tries == 9
    assert tuple(timers) == DEFAULT_RETRY_DELAYS_SECONDS
    assert timers[0] <= 10 and sum(timers) >= 24 * 3600
    recorded = await tries(db_pool, endpoint.id)
    assert [t["attempt"] for t in recorded] == list(range(1, 10))
    assert all(t["status_code"] is None and t["error"] for t in recorded)


async def test_an_endpoint_failing_for_the_disable_after_period_is_disabled_and_staff_told(
    webhook_stack_factory: StackFactory, receiver: tuple[WebhookReceiver, str], db_pool: asyncpg.Pool
) -> None:
    rec, url = receiver
    rec.down = True
    staff = f"ops-{uuid.uuid4().hex[:8]}@example.com"
    async with webhook_stack_factory(disable_after=timedelta(days=5), staff_notify_email=staff) as stack:
        endpoint_id, secret = await stack.endpoint(url)
        rec.secrets = [secret]
        # Everything has failed for a little over five days already.
        await db_pool.execute(
            "UPDATE webhook_endpoints SET failing_since = now() - interval '5 days 1 minute' WHERE id = $1",
            endpoint_id,
        )
        event_id = await stack.event()
        outcome = await delivery_outcome(stack.client, endpoint_id, event_id)
    assert outcome.outcome is TryOutcome.ENDPOINT_GONE and outcome.tries == 1
    endpoint = await store.get_endpoint(db_pool, endpoint_id)
    assert endpoint is not None and endpoint.disabled_at is not None
    assert "failed for 5 day" in (endpoint.disabled_reason or "")
    mail = await db_pool.fetch("SELECT subject, body FROM dev_outbox WHERE to_address = $1", staff)
    assert len(mail) == 1 and endpoint_id in mail[0]["subject"] and url in mail[0]["body"]


async def test_a_failing_endpoint_younger_than_the_period_stays_enabled(
    webhook_stack_factory: StackFactory, receiver: tuple[WebhookReceiver, str], db_pool: asyncpg.Pool
) -> None:
    rec, url = receiver
    rec.down = True
    async with webhook_stack_factory(retries=(0.2,), disable_after=timedelta(days=5)) as stack:
        endpoint_id, _ = await stack.endpoint(url)
        event_id = await stack.event()
        outcome = await delivery_outcome(stack.client, endpoint_id, event_id)
    assert outcome.outcome is TryOutcome.FAILED and outcome.tries == 2
    endpoint = await store.get_endpoint(db_pool, endpoint_id)
    assert endpoint is not None and endpoint.disabled_at is None and endpoint.failing_since is not None


async def test_the_sweep_dispatches_what_no_relay_loop_did(
    webhook_stack_factory: StackFactory,
    receiver: tuple[WebhookReceiver, str],
    db_pool: asyncpg.Pool,
    temporal_client: Client,
) -> None:
    rec, url = receiver
    async with webhook_stack_factory(relay=False) as stack:
        endpoint_id, secret = await stack.endpoint(url, events=["payment.returned"])
        rec.secrets = [secret]
        wanted = await stack.event(EventType.PAYMENT_RETURNED)
        other = await stack.event(EventType.PAYMENT_SETTLED)  # not subscribed
        await db_pool.execute(
            "UPDATE events SET created_at = created_at - interval '1 minute' WHERE id = ANY($1::text[])",
            [wanted, other],
        )
        await db_pool.execute(
            "UPDATE webhook_endpoints SET created_at = created_at - interval '2 minutes' WHERE id = $1",
            endpoint_id,
        )
        dispatched = await stack.client.execute_workflow(
            WebhookSweepWorkflow.__name__,
            id=f"sweep-{uuid.uuid4().hex[:8]}",
            task_queue=stack.harness.task_queue,
            result_type=int,
        )
        assert dispatched >= 2
        assert (await delivery_outcome(stack.client, endpoint_id, wanted)).outcome is TryOutcome.DELIVERED
        await wait_for(
            lambda: db_pool.fetchval(
                "SELECT count(*) FROM events WHERE id = ANY($1::text[]) AND dispatched_at IS NOT NULL",
                [wanted, other],
            ),
            lambda n: n == 2,
        )
    assert rec.delivered_ids() == {wanted: 1}
    assert [t["event_id"] for t in await tries(db_pool, endpoint_id)] == [wanted]


async def test_the_sweep_schedule_is_created_once(temporal_client: Client) -> None:
    task_queue = f"sweep-{uuid.uuid4().hex[:8]}"
    handle = temporal_client.get_schedule_handle(SWEEP_SCHEDULE_ID)
    with contextlib.suppress(RPCError):
        await handle.delete()  # made by a `portalpay worker` another test started
    try:
        created = await ensure_webhook_sweep_schedule(temporal_client, task_queue)
        again = await ensure_webhook_sweep_schedule(temporal_client, task_queue)
        description = await handle.describe()
    finally:
        await handle.delete()
    assert created is True and again is False
    assert description.schedule.spec.intervals[0].every == timedelta(minutes=1)
