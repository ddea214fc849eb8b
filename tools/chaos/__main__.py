"""`make chaos` (`python -m tools.chaos`): crashes, outages, provider faults and hostile input.

Only the command line lives here; the campaign is imported when it runs.
"""

import asyncio
from pathlib import Path

import typer

chaos_app = typer.Typer(help="Fault campaign: crashes, outages, provider faults, hostile input.")


@chaos_app.callback(invoke_without_command=True)
def chaos(
    attempts: int = typer.Option(500, min=1, help="Customer attempts in flight."),
    concurrency: int = typer.Option(500, min=1, help="Customers acting at once."),
    kills: int = typer.Option(10, min=0, help="Worker SIGKILLs."),
    pg_restarts: int = typer.Option(2, min=0, help="PostgreSQL restarts."),
    server_restarts: int = typer.Option(
        1, min=0, help="Temporal server restarts (state kept in a SQLite file; SIGKILL, then SIGTERM)."
    ),
    fault_rate: float = typer.Option(0.3, min=0.0, max=1.0, help="Share of provider calls that fault."),
    broken: str = typer.Option("sms", help="The channel whose provider refuses every send (email or sms)."),
    schemathesis_calls: int = typer.Option(10_000, min=0, help="Generated API calls (0 skips)."),
    lifecycle_debits: int = typer.Option(
        200, min=0, help="Debits across the SPEC §9 test accounts, webhooks dropped and duplicated (0 skips)."
    ),
    webhook_probes: int = typer.Option(
        40, min=0, help="Probe events for the loopback webhook receiver failing 30% of tries (0 skips it)."
    ),
    seed: int | None = typer.Option(None, help="Random seed (printed, to replay a run)."),
    work_dir: Path | None = typer.Option(None, help="Where logs and the dedicated PostgreSQL go."),
) -> None:
    """Run the campaign; exit 1 when any promise breaks."""
    from rich.console import Console

    from tools.chaos.campaign import CampaignConfig, run_campaign
    from tools.chaos.lifecycle_phase import LifecyclePhaseConfig
    from tools.chaos.webhook_phase import WebhookPhaseConfig

    if broken not in ("email", "sms"):
        raise typer.BadParameter("--broken is email or sms")
    cfg = CampaignConfig(
        attempts=attempts,
        concurrency=concurrency,
        worker_kills=kills,
        pg_restarts=pg_restarts,
        server_restarts=server_restarts,
        fault_rate=fault_rate,
        broken_channel=broken,
        schemathesis_calls=schemathesis_calls,
        lifecycle=LifecyclePhaseConfig(debits=lifecycle_debits),
        webhooks=WebhookPhaseConfig(probes=webhook_probes) if webhook_probes else None,
    )
    if seed is not None:
        cfg.seed = seed
    if work_dir is not None:
        cfg.work_dir = work_dir.resolve()
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    report = asyncio.run(run_campaign(cfg, console))
    for line in report.faults:
        console.print(f"  {line}")
    console.print(report.table())
    if not report.ok:
        raise typer.Exit(1)


if __name__ == "__main__":
    chaos_app()
