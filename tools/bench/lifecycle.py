"""`make bench BENCH_ARGS="--lifecycle 100000"`: the payment lifecycle at scale, measured (issue 20).

1. Loads N live payments (half `processing`, half `settled` inside the return window) into the
   database and the same debits into the sandbox processor's ledger, in bulk SQL.
2. Runs one reconciliation pass (`reconcile_processor`, the activity the daily Schedule runs) against
   `portalpay processor` as a separate process, and reports its wall time, the processor calls it
   made (counted at the client) and the peak memory of the process running it.
3. Runs one follower (`AchPaymentWorkflow`) per steady shape on the time-skipping server for
   `--lifecycle-days` simulated days, with the real worker, database and processor, and reports the
   history events and activity tasks per payment per day from its history:
   - `processing, no news`: a debit the processor never settles (the poll cost);
   - `settled, in window`: a settled debit waiting for its return window to close.
"""

import asyncio
import os
import resource
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.api.enums.v1 import EventType, IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.reconciliation import ReconciliationActivities
from activities.settlement import LifecycleConfig
from domain.ach_payment import AchPaymentInput, ReconcileInput, ach_workflow_id
from domain.channels import Channel
from infra.converter import build_data_converter
from infra.db import create_pool, migrate_url
from infra.providers.delivery.console import ConsoleSender
from infra.providers.processor.client import HttpProcessorClient
from infra.settings import Settings
from tools.bench.stack import ManagedProcess, Stack, StackConfig, wait_for_port
from workers.worker import WorkerDeps, build_worker
from workflows.search_attributes import ALL_KEYS

BIN_DIR = Path(sys.executable).parent
INSTANCE = "bench-lifecycle"
CHUNK = 10_000
AMOUNT = 10_000


class CountingProcessor(HttpProcessorClient):
    """The sandbox client, counting the calls reconciliation makes (by method and path shape)."""

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url, timeout=30.0)
        self.calls: dict[str, int] = {}

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        shape = f"{method} /v1/{path.split('/')[2]}{'/{id}' if path.count('/') > 2 else ''}"
        self.calls[shape] = self.calls.get(shape, 0) + 1
        return await super()._call(method, path, **kwargs)


async def load_live_payments(pool: asyncpg.Pool, count: int) -> float:
    """N customers, payers, pending or paid invoices, payments and sandbox debits; seconds taken."""
    started = time.perf_counter()
    for first in range(0, count, CHUNK):
        last = min(first + CHUNK, count) - 1
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO customers (id, name) SELECT 'C-L' || n, 'Customer ' || n"
                " FROM generate_series($1::int, $2::int) n",
                first,
                last,
            )
            await conn.execute(
                "INSERT INTO contacts (id, customer_id, name, email, is_primary, portal_payer)"
                " SELECT 'CT-L' || n, 'C-L' || n, 'Payer ' || n, 'payer-l' || n || '@example.com', true, true"
                " FROM generate_series($1::int, $2::int) n",
                first,
                last,
            )
            await conn.execute(
                "INSERT INTO invoices (id, number, customer_id, kind, amount_cents, balance_cents, status)"
                " SELECT 'INV-L' || n, 'INV-L' || n, 'C-L' || n, 'invoice', $3, 0,"
                " CASE WHEN n % 2 = 0 THEN 'pending' ELSE 'paid' END FROM generate_series($1::int, $2::int) n",
                first,
                last,
                AMOUNT,
            )
            await conn.execute(
                "INSERT INTO sandbox_debits (id, instance, idempotency_key, request_digest, amount_cents, currency,"
                " routing_number, account_last4, scenario, status, metadata, settle_at, settled_at)"
                " SELECT 'dbt_l' || n, $3, 'PAY-L' || n, 'bench', $4, 'USD', '011000015', '6789', 'settle',"
                " CASE WHEN n % 2 = 0 THEN 'processing' ELSE 'settled' END,"
                " jsonb_build_object('payment_id', 'PAY-L' || n, 'invoice_id', 'INV-L' || n),"
                " now() + interval '3650 days', CASE WHEN n % 2 = 0 THEN NULL ELSE now() END"
                " FROM generate_series($1::int, $2::int) n",
                first,
                last,
                INSTANCE,
                AMOUNT,
            )
            await conn.execute(
                "INSERT INTO payments (id, idempotency_key, invoice_id, customer_id, payer_contact_id, workflow_id,"
                " run_id, method, amount_cents, currency, account_holder, account_type, routing_number,"
                " account_last4, status, processor_reference, authorization_text, authorized_at, retain_until,"
                " expected_settlement_at)"
                " SELECT 'PAY-L' || n, 'PAY-L' || n, 'INV-L' || n, 'C-L' || n, 'CT-L' || n,"
                " 'pay-invoice-INV-L' || n, gen_random_uuid()::text, 'echeck', $3, 'USD', 'Payer', 'checking',"
                " '011000015', '6789', CASE WHEN n % 2 = 0 THEN 'processing' ELSE 'settled' END, 'dbt_l' || n,"
                " 'I authorize', now(), now() + interval '730 days', now() + interval '3650 days'"
                " FROM generate_series($1::int, $2::int) n",
                first,
                last,
                AMOUNT,
            )
    return time.perf_counter() - started


def _reset_peak_rss() -> bool:
    """Linux: writing 5 to clear_refs resets VmHWM, so the next read is this pass's peak."""
    try:
        Path(f"/proc/{os.getpid()}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_rss_mib() -> float:
    try:
        for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def reconciliation_pass(pool: asyncpg.Pool, processor_url: str, client: Client) -> dict[str, Any]:
    processor = CountingProcessor(processor_url)
    before = _peak_rss_mib()
    peak_reset = _reset_peak_rss()
    started = time.perf_counter()
    try:
        report = await ActivityEnvironment(client=client).run(
            ReconciliationActivities(pool, processor).reconcile_processor, ReconcileInput()
        )
    finally:
        await processor.aclose()
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 1),
        "processor_calls": sum(processor.calls.values()),
        "calls_by_kind": processor.calls,
        "peak_rss_mib": round(_peak_rss_mib(), 1),
        "rss_before_mib": round(before, 1),
        "peak_is_this_pass": peak_reset,
        "payments_checked": report.payments_checked,
        "mismatches": len(report.mismatches),
    }


async def follower_cost(
    pool: asyncpg.Pool, processor_url: str, settings: Settings, days: int
) -> list[dict[str, Any]]:
    """One follower per steady shape, `days` simulated days on the time-skipping server."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN_DIR / "temporal-test-server"),
        data_converter=build_data_converter(settings.codec_key_ring()),
    )
    try:
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={
                    key.name: IndexedValueType.ValueType(key.indexed_value_type.value) for key in ALL_KEYS
                },
            )
        )
        processor = HttpProcessorClient(processor_url, timeout=30.0)
        console = ConsoleSender(pool)
        deps = WorkerDeps(
            pool=pool,
            senders={Channel.EMAIL: console, Channel.SMS: console},
            otp_hmac_key=b"bench-otp-key",
            audit_key=b"bench-audit-key",
            processor=processor,
            lifecycle=LifecycleConfig(),
        )
        task_queue = f"bench-life-{uuid.uuid4().hex[:8]}"
        shapes = {"processing, no news": "PAY-L0", "settled, in window": "PAY-L1"}
        # Its expected settlement date has passed and the processor never settles it: the follower asks.
        await pool.execute(
            "UPDATE payments SET expected_settlement_at = now() - interval '1 hour' WHERE id = 'PAY-L0'"
        )
        results = []
        async with build_worker(env.client, task_queue, deps, graceful_shutdown=timedelta(seconds=5)):
            handles = {
                shape: await env.client.start_workflow(
                    "AchPaymentWorkflow",
                    AchPaymentInput(payment_id=payment_id),
                    id=ach_workflow_id(payment_id),
                    task_queue=task_queue,
                )
                for shape, payment_id in shapes.items()
            }
            await env.sleep(timedelta(days=days))
            for shape, handle in handles.items():
                history = await handle.fetch_history()
                scheduled = sum(
                    1 for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                )
                workflow_tasks = sum(
                    1 for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED
                )
                results.append(
                    {
                        "shape": shape,
                        "simulated_days": days,
                        "history_events": len(history.events),
                        "events_per_day": round(len(history.events) / days, 1),
                        "activity_tasks_per_day": round(scheduled / days, 1),
                        "workflow_tasks_per_day": round(workflow_tasks / days, 1),
                    }
                )
        await processor.aclose()
        return results
    finally:
        await env.shutdown()


async def run_lifecycle_bench(
    payments: int, *, days: int, work_dir: Path, database_url: str | None
) -> dict[str, Any]:
    config = StackConfig(work_dir=work_dir, database_url=database_url)
    stack = Stack(config)
    await asyncio.to_thread(work_dir.mkdir, parents=True, exist_ok=True)
    processor_proc: ManagedProcess | None = None
    try:
        await asyncio.to_thread(stack.start_database)
        await migrate_url(stack.database_url)
        await stack.start_temporal()
        env = stack.build_env()
        env.update(
            {
                "SANDBOX_INSTANCE": INSTANCE,
                "SANDBOX_SETTLEMENT_SECONDS": "315360000",
                "PROCESSOR_WEBHOOK_URL": "http://127.0.0.1:9/no-portal",
            }
        )
        processor_proc = ManagedProcess(
            "processor",
            [sys.executable, "-m", "starters.cli.app", "processor"],
            env,
            work_dir / "processor.log",
        ).start()
        await wait_for_port(stack.processor_port, processor_proc)
        processor_url = f"http://127.0.0.1:{stack.processor_port}"
        pool = await create_pool(stack.database_url, min_size=2, max_size=10)
        try:
            load_seconds = await load_live_payments(pool, payments)
            await pool.execute("ANALYZE")
            settings = Settings(codec_keys=env["CODEC_KEYS"])
            client = await Client.connect(
                stack.temporal_address, data_converter=build_data_converter(settings.codec_key_ring())
            )
            reconcile = await reconciliation_pass(pool, processor_url, client)
            followers = await follower_cost(pool, processor_url, settings, days)
        finally:
            await pool.close()
        return {
            "payments": payments,
            "load_seconds": round(load_seconds, 1),
            "reconciliation": reconcile,
            "followers": followers,
        }
    finally:
        if processor_proc is not None:
            processor_proc.stop()
        stack.stop()
