"""Scale-out mode (`--workers N --portals M`): several worker and portal processes on one Temporal
server and one PostgreSQL, attempts spread across the portals round-robin, and one worker
SIGKILLed (not restarted) when half the attempts of a level have finished.

What it shows is that nothing ties an attempt to one process: any portal answers any session and
the surviving workers pick up the killed one's workflows and activities. Every attempt must still
be paid (0 failed).
"""

import asyncio
import time
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from tools.bench.driver import BenchInvoice, Timings, portal_attempt
from tools.bench.report import PhaseResult
from tools.bench.run import Job, ResourceWatch, run_jobs
from tools.bench.stack import Stack


async def scale_out_phase(
    stack: Stack,
    clients: list[httpx.AsyncClient],
    invoices: list[BenchInvoice],
    concurrency: int,
    progress: Progress | None,
    *,
    kill_one: bool,
) -> tuple[PhaseResult, dict[str, Any]]:
    timings = Timings()
    total = len(invoices)
    killed: dict[str, Any] = {}
    half = asyncio.Event()
    finished = [0]

    def job(i: int, inv: BenchInvoice) -> Job:
        async def attempt(t: Timings) -> None:
            try:
                await portal_attempt(clients[i % len(clients)], inv, t)
            finally:
                finished[0] += 1
                if finished[0] >= total // 2:
                    half.set()

        return attempt

    async def killer(started: float) -> None:
        victims = [w for w in stack.workers if w.alive()]
        if not kill_one or len(victims) < 2:
            return
        await half.wait()
        victims[-1].kill()
        killed.update(
            worker=victims[-1].name,
            at_seconds=round(time.monotonic() - started, 1),
            finished_before=timings.completed + timings.failed,
        )

    procs: dict[str, Any] = {w.name: w for w in stack.workers}
    procs |= {p.name: p for p in stack.portals}
    procs |= {"temporal": stack.temporal, "postgres": stack.postgres}
    async with ResourceWatch(procs) as watch:
        started = time.monotonic()
        kill_task = asyncio.create_task(killer(started))
        wall = await run_jobs(
            (job(i, inv) for i, inv in enumerate(invoices)),
            total,
            concurrency,
            timings,
            progress,
            f"scale-out C={concurrency:<4}",
        )
        kill_task.cancel()
    side = f"portalpay {len(stack.workers)}w/{len(clients)}p"
    return PhaseResult(side, concurrency, total, wall, timings, watch.result), killed


def scale_out_table(rows: list[tuple[PhaseResult, dict[str, Any]]]) -> Table:
    table = Table(title="Scale-out: attempts spread across portals, one worker SIGKILLed halfway")
    for col in ("C", "side", "attempts/s", "paid", "failed", "worker killed"):
        table.add_column(col, justify="right")
    for phase, killed in rows:
        what = (
            f"{killed['worker']} at t+{killed['at_seconds']} s ({killed['finished_before']} done)"
            if killed
            else "—"
        )
        table.add_row(
            str(phase.concurrency),
            phase.side,
            f"{phase.attempts_per_second:.1f}",
            str(phase.timings.completed),
            f"[red]{phase.timings.failed}[/]" if phase.timings.failed else "0",
            what,
        )
    return table


def print_scale_out(console: Console, rows: list[tuple[PhaseResult, dict[str, Any]]]) -> None:
    console.print(scale_out_table(rows))
    for phase, _ in rows:
        if phase.timings.failed:
            console.print(f"[red]C={phase.concurrency} failures:[/] {dict(phase.timings.errors)}")
