"""`make bench` (`python -m tools.bench`): PortalPay end to end through the portal, beside the bare-Temporal floor.

Only the command line lives here; what it runs is imported when it runs.
"""

import asyncio
import json
import sys
import time
from pathlib import Path

import typer

bench_app = typer.Typer(help="Benchmark PortalPay against the bare-Temporal floor.")


@bench_app.callback(invoke_without_command=True)
def bench(
    attempts: int = typer.Option(
        200, "--attempts", "-n", min=1, help="Attempts per level and side (at least 2 x C)."
    ),
    concurrency: str = typer.Option(
        "20,100", "--concurrency", "-c", help="Comma-separated concurrency levels."
    ),
    parked: int = typer.Option(
        10_000, "--parked", min=0, help="Memory mode: attempts parked waiting for the code (0 skips it)."
    ),
    cold: bool = typer.Option(True, "--cold-start/--no-cold-start", help="Time a worker's cold start."),
    profile: bool = typer.Option(
        True, "--profile/--no-profile", help="When a target is missed, py-spy the worker and portal."
    ),
    workers: int = typer.Option(
        1, min=1, help="Scale-out mode when > 1 (or --portals > 1): worker processes, one SIGKILLed halfway."
    ),
    portals: int = typer.Option(
        1, min=1, help="Scale-out mode: portal processes the attempts spread across."
    ),
    json_out: bool = typer.Option(
        False, "--json", help="Print the figures as JSON on stdout (tables go to stderr)."
    ),
    chart: Path | None = typer.Option(None, "--chart", help="Write a PNG of latency percentiles per action."),
    temporal_address: str | None = typer.Option(
        None, help="Use this Temporal server instead of starting one."
    ),
    database_url: str | None = typer.Option(None, help="Use this PostgreSQL instead of a dedicated one."),
    portal_url: str | None = typer.Option(
        None, help="Use this portal (its worker, task queue and database must be given too)."
    ),
    task_queue: str | None = typer.Option(None, help="The task queue of a given portal's worker."),
    work_dir: Path | None = typer.Option(None, help="Where logs and the dedicated PostgreSQL go."),
    lifecycle: int = typer.Option(
        0, "--lifecycle", min=0, help="Lifecycle mode: load this many live payments, time one reconciliation."
    ),
    lifecycle_days: int = typer.Option(
        7, "--lifecycle-days", min=1, help="Lifecycle mode: simulated days of a follower's steady cost."
    ),
) -> None:
    """Drive N attempts at concurrency C end to end, beside the bare-Temporal floor."""
    from rich.console import Console

    from infra.settings import STATE_DIR

    if lifecycle:
        from tools.bench.lifecycle import run_lifecycle_bench

        directory = (work_dir or STATE_DIR / f"bench-lifecycle-{int(time.time())}").resolve()
        figures = asyncio.run(
            run_lifecycle_bench(lifecycle, days=lifecycle_days, work_dir=directory, database_url=database_url)
        )
        sys.stdout.write(json.dumps(figures, indent=2, default=str) + "\n")
        return
    from tools.bench.report import targets, write_chart
    from tools.bench.stack import StackConfig
    from tools.bench.suite import BENCH_ENV, _levels, render, run_bench

    levels = _levels(concurrency)
    if portal_url and not (database_url and temporal_address and task_queue):
        raise typer.BadParameter("--portal-url needs --database-url, --temporal-address and --task-queue")
    console = Console(stderr=json_out)
    if not console.is_terminal:
        console = Console(stderr=json_out, width=160)
    directory = (work_dir or STATE_DIR / f"bench-{int(time.time())}").resolve()
    config = StackConfig(
        work_dir=directory,
        database_url=database_url,
        temporal_address=temporal_address,
        portal_url=portal_url,
        extra_env=dict(BENCH_ENV),
        workers=workers,
        portals=portals,
    )
    if (workers > 1 or portals > 1) and portal_url:
        raise typer.BadParameter("scale-out mode starts its own portals: leave out --portal-url")
    if task_queue:
        config.task_queue = task_queue
    try:
        result = asyncio.run(
            run_bench(
                attempts=attempts,
                levels=levels,
                parked=parked,
                cold=cold,
                work_dir=directory,
                config=config,
                console=console,
                show_progress=True,
                profile=profile,
            )
        )
    except (RuntimeError, OSError) as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    result["targets"] = targets(result["phases"], result.get("memory"), result.get("cold_start"))
    render(result, console)
    if chart is not None:
        write_chart(chart, result["phases"])
        console.print(f"chart written to {chart}")
    if json_out:
        doc = {**result, "phases": [p.to_json() for p in result["phases"]]}
        if "scale_out" in doc:
            doc["scale_out"] = [{**p.to_json(), "killed": k} for p, k in result["scale_out"]]
        sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")


if __name__ == "__main__":
    bench_app()
