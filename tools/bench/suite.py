"""The benchmark run: PortalPay end to end through the portal, beside the bare-Temporal floor.

Starts (unless given addresses) a Temporal dev server, a dedicated PostgreSQL, `portalpay worker`,
`portalpay portal` and the floor's worker, all as separate processes on this machine; then, for
each concurrency level, runs the floor and PortalPay one after the other on the same server.
"""

import asyncio
import platform
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import typer
from rich.console import Console
from temporalio.client import Client

from infra.db import create_pool
from infra.pay_links import signer_from_settings
from infra.settings import Settings
from infra.temporal import connect
from tools.bench.driver import (
    BenchInvoice,
    Timings,
    floor_attempt,
    minimal_attempt,
    portal_attempt,
    seed_invoices,
)
from tools.bench.limits import render_limits
from tools.bench.memory import cold_start, memory_mode
from tools.bench.profile import Profiler
from tools.bench.report import (
    TARGET_LEVEL,
    PhaseResult,
    latency_table,
    print_memory,
    targets,
    targets_table,
    throughput_table,
)
from tools.bench.run import Job, live, progress_bar, run_jobs, run_phase
from tools.bench.scale_out import print_scale_out, scale_out_phase
from tools.bench.stack import ManagedProcess, Stack, StackConfig

WARMUP = 10
PROFILE_ATTEMPTS = 120
# Parked attempts wait longer than the default code TTL while the rest of the run goes on.
BENCH_ENV = {
    "OTP_CODE_TTL_SECONDS": "7200",
    "ATTEMPT_IDLE_SECONDS": "7200",
    "OTP_RESEND_COOLDOWN_SECONDS": "0",
}


def per_level(attempts: int, concurrency: int) -> int:
    """At least two attempts per lane, so a level measures steady state and not its ramp."""
    return max(attempts, 2 * concurrency)


def settings_from_env(env: dict[str, str]) -> Settings:
    fields = Settings.model_fields
    values: dict[str, Any] = {k.lower(): v for k, v in env.items() if k.lower() in fields}
    return Settings(_env_file=None, **values)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": psutil.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu": cpu,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


async def run_bench(
    *,
    attempts: int,
    levels: list[int],
    parked: int,
    cold: bool,
    work_dir: Path,
    config: StackConfig,
    console: Console,
    show_progress: bool,
    profile: bool = True,
) -> dict[str, Any]:
    if config.workers > 1 or config.portals > 1:
        return await run_scale_out(
            attempts=attempts, levels=levels, config=config, console=console, show_progress=show_progress
        )
    stack = Stack(config)
    floor_worker: ManagedProcess | None = None
    try:
        # With a given portal, its own worker serves it: starting one more would skew the figures.
        await stack.start(worker=config.portal_url is None)
        floor_queue = f"floor-{secrets.token_hex(4)}"
        floor_worker = ManagedProcess(
            "floor-worker",
            [
                sys.executable,
                "-m",
                "tools.bench.floor",
                "--address",
                stack.temporal_address,
                "--task-queue",
                floor_queue,
            ],
            stack.env,
            work_dir / "floor-worker.log",
        ).start()
        settings = settings_from_env(stack.env)
        pool = await create_pool(stack.database_url, min_size=1, max_size=4)
        needed = WARMUP + sum(per_level(attempts, c) for c in levels) + parked + PROFILE_ATTEMPTS + 1
        console.print(f"seeding {needed} invoices…")
        invoices = await seed_invoices(pool, needed)
        signer = signer_from_settings(settings)
        for inv in invoices:
            inv.token = signer.issue(inv.invoice_id)
        portal_client = await connect(settings)
        floor_client = await Client.connect(stack.temporal_address)
        limits = httpx.Limits(
            max_connections=max([*levels, 50]) + 20, max_keepalive_connections=max([*levels, 50]) + 20
        )
        async with httpx.AsyncClient(base_url=stack.portal_url, timeout=120.0, limits=limits) as http:
            progress = progress_bar(show_progress, console)
            procs = {
                "worker": stack.worker,
                "portal": stack.portal,
                "temporal": stack.temporal,
                "postgres": stack.postgres,
            }
            floor_procs = {"worker": floor_worker, "temporal": stack.temporal, "postgres": stack.postgres}
            phases: list[PhaseResult] = []
            memory: dict[str, Any] | None = None
            with live(progress):
                queue = iter(invoices)
                await _warm_up(http, floor_client, floor_queue, [next(queue) for _ in range(WARMUP)])
                for c in levels:
                    n = per_level(attempts, c)
                    ids = [f"minimal-{secrets.token_hex(6)}" for _ in range(n)]
                    minimal_jobs: list[Job] = [_minimal_job(floor_client, i, floor_queue) for i in ids]
                    phases.append(await run_phase("minimal", c, minimal_jobs, floor_procs, progress))
                    ids = [f"floor-{secrets.token_hex(6)}" for _ in range(n)]
                    floor_jobs: list[Job] = [_floor_job(floor_client, i, floor_queue) for i in ids]
                    phases.append(await run_phase("floor", c, floor_jobs, floor_procs, progress))
                    portal_jobs: list[Job] = [_portal_job(http, next(queue)) for _ in range(n)]
                    phases.append(await run_phase("portalpay", c, portal_jobs, procs, progress))
                cold_invoice = next(queue)
                profiled: dict[str, Any] | None = None
                missed = [t for t in targets(phases, None, None) if not t["met"]]
                if profile and missed and stack.worker is not None and stack.portal is not None:
                    profiled = await _profile(
                        http, [next(queue) for _ in range(PROFILE_ATTEMPTS)], stack, work_dir, progress
                    )
                if parked:
                    memory = await memory_mode(
                        stack=stack,
                        floor_worker=floor_worker,
                        http=http,
                        floor_client=floor_client,
                        floor_queue=floor_queue,
                        invoices=[next(queue) for _ in range(parked)],
                        progress=progress,
                    )
            cold_result = None
            if cold:
                cold_result = await cold_start(
                    stack=stack,
                    settings=settings,
                    portal_client=portal_client,
                    floor_client=floor_client,
                    invoice=cold_invoice,
                )
        await pool.close()
        return {
            "machine": machine(),
            "settings": {"attempts_per_level": attempts, "concurrency": levels, "parked": parked},
            "phases": phases,
            "memory": memory,
            "cold_start": cold_result,
            "profile": profiled,
        }
    finally:
        if floor_worker is not None:
            floor_worker.stop()
        stack.stop()


async def _profile(
    http: httpx.AsyncClient, invoices: list[BenchInvoice], stack: Stack, work_dir: Path, progress: Any
) -> dict[str, Any]:
    """A run at C = 20 with py-spy on the worker and the portal, outside the measured phases."""
    assert stack.worker is not None and stack.portal is not None
    profiler = Profiler({"worker": stack.worker.pid, "portal": stack.portal.pid}, work_dir)
    with profiler:
        await asyncio.sleep(0.5)  # py-spy attaches
        jobs = (_portal_job(http, inv) for inv in invoices)
        await run_jobs(jobs, len(invoices), TARGET_LEVEL, Timings(), progress, "profile (py-spy)")
    return await profiler.stop()


async def run_scale_out(
    *, attempts: int, levels: list[int], config: StackConfig, console: Console, show_progress: bool
) -> dict[str, Any]:
    stack = Stack(config)
    try:
        await stack.start()
        settings = settings_from_env(stack.env)
        pool = await create_pool(stack.database_url, min_size=1, max_size=4)
        needed = WARMUP + sum(per_level(attempts, c) for c in levels)
        invoices = await seed_invoices(pool, needed)
        await pool.close()
        signer = signer_from_settings(settings)
        for inv in invoices:
            inv.token = signer.issue(inv.invoice_id)
        limits = httpx.Limits(max_connections=max(levels) + 20, max_keepalive_connections=max(levels) + 20)
        clients = [httpx.AsyncClient(base_url=u, timeout=120.0, limits=limits) for u in stack.portal_urls]
        rows = []
        try:
            progress = progress_bar(show_progress, console)
            with live(progress):
                queue = iter(invoices)
                warm = Timings()
                jobs = [_portal_job(clients[i % len(clients)], next(queue)) for i in range(WARMUP)]
                await run_jobs(iter(jobs), WARMUP, 5, warm, None, "warm")
                for c in levels:
                    batch = [next(queue) for _ in range(per_level(attempts, c))]
                    rows.append(await scale_out_phase(stack, clients, batch, c, progress, kill_one=True))
                    for w in stack.workers:  # the next level starts with every worker again
                        if not w.alive():
                            w.start()
        finally:
            for client in clients:
                await client.aclose()
        return {"machine": machine(), "scale_out": rows, "phases": [r[0] for r in rows]}
    finally:
        stack.stop()


async def _warm_up(http: httpx.AsyncClient, floor: Client, queue: str, invoices: list[BenchInvoice]) -> None:
    timings = Timings()
    await run_jobs((_portal_job(http, inv) for inv in invoices), len(invoices), 5, timings, None, "warm")
    ids = [f"floor-warm-{secrets.token_hex(6)}" for _ in invoices]
    await run_jobs((_floor_job(floor, i, queue) for i in ids), len(ids), 5, timings, None, "warm")
    ids = [f"minimal-warm-{secrets.token_hex(6)}" for _ in invoices]
    await run_jobs((_minimal_job(floor, i, queue) for i in ids), len(ids), 5, timings, None, "warm")
    if timings.failed:
        raise RuntimeError(f"warm-up attempts failed: {dict(timings.errors)}")


def _portal_job(http: httpx.AsyncClient, inv: BenchInvoice) -> Job:
    return lambda timings: portal_attempt(http, inv, timings)


def _floor_job(client: Client, workflow_id: str, queue: str) -> Job:
    return lambda timings: floor_attempt(client, workflow_id, queue, timings)


def _minimal_job(client: Client, workflow_id: str, queue: str) -> Job:
    return lambda timings: minimal_attempt(client, workflow_id, queue, timings)


def _levels(text: str) -> list[int]:
    try:
        levels = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter("comma-separated integers, e.g. 20,100") from None
    if not levels or min(levels) < 1:
        raise typer.BadParameter("at least one level, each ≥ 1")
    return levels


def render(result: dict[str, Any], console: Console) -> None:
    phases: list[PhaseResult] = result["phases"]
    m = result["machine"]
    console.print(f"[bold]{m['date']}[/] · {m['cores']} cores · {m['memory_gib']} GiB · {m['cpu']}")
    if "scale_out" in result:
        print_scale_out(console, result["scale_out"])
        return
    console.print(throughput_table(phases))
    console.print(latency_table(phases))
    if result["memory"]:
        print_memory(console, result["memory"])
    cold = result["cold_start"]
    if cold:
        for side in ("portalpay", "floor"):
            c = cold[side]
            console.print(
                f"cold start {side:9}: first task {c['first_task_seconds']:.2f} s after launch,"
                f" completed {c['first_task_completed_seconds']:.2f} s"
            )
    console.print(targets_table(result["targets"]))
    render_limits(result, console)
