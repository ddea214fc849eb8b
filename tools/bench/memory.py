"""Memory mode (attempts parked waiting for the code) and worker cold start, PortalPay vs floor."""

import asyncio
import gc
import secrets
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
from rich.progress import Progress
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from domain.attempt import ClientContext, PayInvoiceInput, workflow_id_for
from infra.settings import Settings
from tools.bench.driver import (
    BenchInvoice,
    Timings,
    floor_finish,
    floor_park,
    portal_open,
    portal_request_code,
    portal_verify_and_pay,
)
from tools.bench.floor import FloorWorkflow
from tools.bench.report import MB, percentile
from tools.bench.run import Job, run_jobs
from tools.bench.stack import ManagedProcess, Stack
from workflows.pay_invoice import PayInvoiceWorkflow

PARK_CONCURRENCY = 50
# The cache the workers keep (`build_worker`'s default and the floor's): older parked attempts
# are evicted and must be replayed from history to answer.
WORKER_CACHE = 1000
EVICTION_SAMPLE = 20


async def _rss(proc: ManagedProcess | None) -> float:
    if proc is None:
        return 0.0
    await asyncio.sleep(1.0)  # let the last tasks settle before reading
    return (await asyncio.to_thread(proc.sample)).rss_bytes / MB


async def _answer_after_eviction(finish: Callable[[int], Any], parked: int) -> str:
    if parked <= WORKER_CACHE:
        return f"n/a (≤ {WORKER_CACHE} parked: none evicted)"
    latencies = []
    failed = 0
    for i in range(min(EVICTION_SAMPLE, parked)):
        t = time.perf_counter()
        try:
            await finish(i)
        except Exception:
            failed += 1
            continue
        latencies.append(time.perf_counter() - t)
    if not latencies:
        return f"all {failed} failed"
    note = f" ({failed} failed)" if failed else ""
    return f"{percentile(latencies, 50) * 1000:.0f} / {max(latencies) * 1000:.0f}{note}"


async def memory_mode(
    *,
    stack: Stack,
    floor_worker: ManagedProcess,
    http: httpx.AsyncClient,
    floor_client: Client,
    floor_queue: str,
    invoices: list[BenchInvoice],
    progress: Progress | None,
) -> dict[str, Any]:
    parked = len(invoices)
    result: dict[str, Any] = {"parked": parked, "worker_cache": WORKER_CACHE}
    gc.collect()

    # PortalPay: open + request code through the portal, then leave them waiting for the code.
    before_worker, before_server = await _rss(stack.worker), await _rss(stack.temporal)
    timings = Timings()

    def portal_job(inv: BenchInvoice) -> Job:
        async def job(t: Timings) -> None:
            await portal_open(http, inv, t)
            await portal_request_code(http, inv, t)

        return job

    wall = await run_jobs(
        (portal_job(inv) for inv in invoices), parked, PARK_CONCURRENCY, timings, progress, "park portalpay"
    )
    after_worker, after_server = await _rss(stack.worker), await _rss(stack.temporal)

    verify_timings = Timings()

    async def finish_portal(i: int) -> None:
        await portal_verify_and_pay(http, invoices[i], verify_timings)

    evicted = await _answer_after_eviction(finish_portal, timings.completed)
    result["portalpay"] = {
        "parked_ok": timings.completed,
        "failed": timings.failed,
        "park_rate": timings.completed / wall if wall else 0.0,
        "worker_rss_before_mb": before_worker,
        "worker_rss_after_mb": after_worker,
        "server_rss_before_mb": before_server,
        "server_rss_after_mb": after_server,
        "evicted_answer": evicted,
        "evicted_verify_ms": [round(v * 1000, 1) for v in verify_timings.by_action.get("verify", [])],
    }

    # Floor: the same through a plain client.
    before_worker, before_server = await _rss(floor_worker), after_server
    floor_timings = Timings()
    ids = [f"floor-park-{secrets.token_hex(6)}" for _ in range(parked)]

    def floor_job(wf_id: str) -> Job:
        return lambda t: floor_park(floor_client, wf_id, floor_queue, t)

    wall = await run_jobs(
        (floor_job(i) for i in ids), parked, PARK_CONCURRENCY, floor_timings, progress, "park floor"
    )
    after_worker, after_server = await _rss(floor_worker), await _rss(stack.temporal)
    floor_verify = Timings()

    async def finish_floor(i: int) -> None:
        await floor_finish(floor_client, ids[i], floor_verify)

    evicted = await _answer_after_eviction(finish_floor, floor_timings.completed)
    result["floor"] = {
        "parked_ok": floor_timings.completed,
        "failed": floor_timings.failed,
        "park_rate": floor_timings.completed / wall if wall else 0.0,
        "worker_rss_before_mb": before_worker,
        "worker_rss_after_mb": after_worker,
        "server_rss_before_mb": before_server,
        "server_rss_after_mb": after_server,
        "evicted_answer": evicted,
        "evicted_verify_ms": [round(v * 1000, 1) for v in floor_verify.by_action.get("verify", [])],
    }
    floor_rss = result["floor"]["worker_rss_after_mb"]
    result["worker_rss_ratio"] = result["portalpay"]["worker_rss_after_mb"] / floor_rss if floor_rss else None
    return result


# ---- cold start --------------------------------------------------------------------------------


async def _first_task(
    handle: WorkflowHandle[Any, Any], launched: float, within: float = 60.0
) -> dict[str, float]:
    """Seconds from launching the worker process to its first workflow task started and completed."""
    deadline = time.monotonic() + within
    started: float | None = None
    while time.monotonic() < deadline:
        async for event in handle.fetch_history_events():
            at = event.event_time.seconds + event.event_time.nanos / 1e9
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED and started is None:
                started = at
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and started is not None:
                return {
                    "first_task_seconds": started - launched,
                    "first_task_completed_seconds": at - launched,
                }
        await asyncio.sleep(0.05)
    raise RuntimeError("the cold worker never took its first task")


async def cold_start(
    *, stack: Stack, settings: Settings, portal_client: Client, floor_client: Client, invoice: BenchInvoice
) -> dict[str, Any]:
    """A workflow is waiting on a fresh task queue; launch a worker process and time its first task."""
    out: dict[str, Any] = {}
    queue = f"cold-{secrets.token_hex(4)}"
    handle = await portal_client.start_workflow(
        PayInvoiceWorkflow.run,
        PayInvoiceInput(
            invoice_id=invoice.invoice_id,
            timers=settings.attempt_timers(),
            policy=settings.otp_policy,
            opened_by=ClientContext(actor="bench"),
        ),
        id=workflow_id_for(invoice.invoice_id),
        task_queue=queue,
    )
    worker = ManagedProcess(
        "cold-worker",
        [sys.executable, "-m", "starters.cli.app", "worker"],
        {**stack.env, "TEMPORAL_TASK_QUEUE": queue},
        stack.config.work_dir / "cold-worker.log",
    )
    launched = time.time()
    worker.start()
    try:
        out["portalpay"] = await _first_task(handle, launched)
    finally:
        worker.stop()
        await handle.terminate("bench cold start done")

    queue = f"cold-floor-{secrets.token_hex(4)}"
    floor_handle = await floor_client.start_workflow(
        FloorWorkflow.run, "cold", id=f"floor-cold-{secrets.token_hex(4)}", task_queue=queue
    )
    floor = ManagedProcess(
        "cold-floor",
        [
            sys.executable,
            "-m",
            "tools.bench.floor",
            "--address",
            stack.temporal_address,
            "--task-queue",
            queue,
        ],
        stack.env,
        stack.config.work_dir / "cold-floor.log",
    )
    launched = time.time()
    floor.start()
    try:
        out["floor"] = await _first_task(floor_handle, launched)
    finally:
        floor.stop()
        await floor_handle.terminate("bench cold start done")
    return out
