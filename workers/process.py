"""`portalpay worker`: one worker process with its pool and provider clients, until SIGTERM."""

import asyncio
import contextlib
from datetime import timedelta

from temporalio.client import Client

from infra.metrics import PORTALPAY_METRICS, start_metrics_server, temporal_runtime_with_prometheus
from infra.providers.delivery.factory import build_code_senders, close_code_senders
from infra.resources import open_pool
from infra.settings import WORKER_SECRETS, Settings
from infra.temporal import connect
from workers.schedules import (
    ensure_nacha_schedules,
    ensure_reconciliation_schedule,
    ensure_webhook_sweep_schedule,
)
from workers.webhook_relay_loop import run_webhook_relay
from workers.worker import WorkerDeps, build_worker, run_until_signalled


async def run_worker_process(
    settings: Settings, *, client: Client | None = None, stop: asyncio.Event | None = None
) -> None:
    settings.refuse_unsafe_prod(WORKER_SECRETS)
    if settings.processor == "nacha":
        # SPEC §13: a wrong routing number or an unreadable key stops the start, not the cut-off.
        settings.nacha_config()
    async with open_pool(settings) as pool:
        senders = build_code_senders(settings, pool)
        try:
            if settings.worker_metrics_port:
                start_metrics_server(settings.worker_metrics_port)
            runtime = None
            if settings.worker_sdk_metrics_port and client is None:
                runtime = temporal_runtime_with_prometheus(f"0.0.0.0:{settings.worker_sdk_metrics_port}")
            temporal = client or await connect(settings, runtime=runtime)
            deps = WorkerDeps.from_settings(settings, pool, senders, metrics=PORTALPAY_METRICS)
            await ensure_reconciliation_schedule(temporal, settings.temporal_task_queue)
            await ensure_webhook_sweep_schedule(temporal, settings.temporal_task_queue)
            if deps.nacha is not None:
                await ensure_nacha_schedules(temporal, settings.temporal_task_queue, deps.nacha.config)
            worker = build_worker(
                temporal,
                settings.temporal_task_queue,
                deps,
                graceful_shutdown=timedelta(seconds=settings.worker_graceful_shutdown_seconds),
                max_cached_workflows=settings.worker_max_cached_workflows,
            )
            relay = asyncio.create_task(run_webhook_relay(pool, temporal, settings.temporal_task_queue))
            try:
                await run_until_signalled(worker, stop)
            finally:
                relay.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await relay
        finally:
            await close_code_senders(senders)
