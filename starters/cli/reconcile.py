"""`portalpay ops reconcile`: run the processor reconciliation now and print what it did (SPEC §9)."""

import asyncio
import json
import os
import sys

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
    """Deliver processor events a webhook missed; list payments whose status differs from the processor's."""

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
    _exit_now(3 if report.mismatches else 0)


def _exit_now(code: int) -> None:
    """Skip interpreter teardown: after `execute_workflow` the Temporal client's Rust threads can abort
    a short-lived process while it finalizes (temporalio/sdk-python#300). Output is flushed first."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


async def _reconcile(settings: Settings, *, wait_seconds: float) -> ReconcileReport | None:
    client = await connect(settings)
    try:
        return await asyncio.wait_for(reconcile_now(client, settings.temporal_task_queue), wait_seconds)
    except TimeoutError:
        return None


def render_reconcile(out: Console, report: ReconcileReport) -> None:
    out.print(
        f"Processor events {report.cursor_from} → {report.cursor_to}: {report.events_seen} read, "
        f"{len(report.delivered)} delivered, {len(report.unknown_events)} for no known payment; "
        f"{report.payments_checked} payment(s) compared."
    )
    if report.delivered:
        table = Table("event", "payment", "type", title="Delivered (a webhook had missed them)")
        for d in report.delivered:
            table.add_row(d.event_id, d.payment_id, d.type)
        out.print(table)
    if report.mismatches:
        table = Table("payment", "ours", "processor", "return code", title="Status mismatches")
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
