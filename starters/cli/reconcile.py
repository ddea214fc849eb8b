"""`portalpay ops reconcile`: run the processor reconciliation now and print what it did (SPEC §9)."""

import asyncio
import json

import typer
from rich.console import Console
from rich.table import Table

from domain.ach_payment import ReconcileReport
from infra.settings import Settings
from infra.temporal import connect
from starters.cli.plumbing import console, err_console, run_async, settings_or_exit
from workers.schedules import reconcile_now


def reconcile(
    as_json: bool = typer.Option(False, "--json", help="JSON on stdout instead of tables."),
    timeout: float = typer.Option(120.0, "--timeout", min=1, help="Seconds to wait for a worker to run it."),
) -> None:
    """Deliver processor events not yet applied, restart missing payment followers, and compare every
    payment in its return window with the processor (exit 3: a mismatch or a refused event to look at)."""

    settings = settings_or_exit()
    report = run_async(_reconcile)(settings, wait_seconds=timeout)
    if report is None:
        err_console.print(
            "[red]error:[/] no worker ran the reconciliation in time (is `portalpay worker` running?)"
        )
        raise typer.Exit(1)
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        render_reconcile(console, report)
    raise typer.Exit(3 if report.mismatches or report.refused else 0)


async def _reconcile(settings: Settings, *, wait_seconds: float) -> ReconcileReport | None:
    client = await connect(settings)
    try:
        return await asyncio.wait_for(reconcile_now(client, settings.temporal_task_queue), wait_seconds)
    except TimeoutError:
        return None


def render_reconcile(out: Console, report: ReconcileReport) -> None:
    out.print(
        f"Processor events {report.cursor_from} → {report.cursor_to}: {report.events_seen} read, "
        f"{len(report.delivered)} delivered, {report.unknown_event_count or len(report.unknown_events)}"
        f" for no known payment (skipped); {report.payments_checked} payment(s) compared;"
        f" {len(report.followers_restarted)} follower(s) restarted."
    )
    if report.followers_restarted:
        out.print("Followers restarted: " + ", ".join(report.followers_restarted))
    if report.refused:
        table = Table(
            "event",
            "payment",
            "type",
            "source",
            "why",
            title="Refused: the processor does not bear these out",
        )
        for r in report.refused:
            table.add_row(r.event_id, r.payment_id, r.type, r.source, r.reason)
        out.print(table)
    if report.repaired:
        table = Table(
            "payment", "ours", "processor", "return code", title="Repaired from the processor's status"
        )
        for m in report.repaired:
            table.add_row(m.payment_id, m.ours, m.processor, m.return_code or "")
        out.print(table)
    if report.delivered:
        table = Table("event", "payment", "type", title="Delivered (a webhook had missed them)")
        for d in report.delivered:
            table.add_row(d.event_id, d.payment_id, d.type)
        out.print(table)
    if report.mismatches:
        table = Table(
            "payment",
            "ours",
            "processor",
            "return code",
            title="Status mismatches (not repaired: staff look)",
        )
        for m in report.mismatches:
            table.add_row(m.payment_id, m.ours, m.processor, m.return_code or "")
        out.print(table)
    else:
        out.print("No status mismatches.")
    if report.orphans_resolved:
        out.print(
            "Debits left `submitting` by a run that is gone, settled at the processor by their key: "
            + ", ".join(report.orphans_resolved)
        )


def report_json(report: ReconcileReport) -> str:
    return json.dumps(report.model_dump(mode="json"), indent=2)
