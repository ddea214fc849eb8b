"""`portalpay import customers|contacts|invoices FILE.csv [--commit] [--json]` (SPEC §12).

A dry run unless `--commit`; the report counts created, updated, unchanged and failed rows and
lists each failed row with its line, column and reason. Exit 0 when no row failed, 1 otherwise.
The rows go through the API's own rules; a payer change still cancels, revokes and tells (SPEC §11),
so the command reaches Temporal and the message providers like the portal does.
"""

import json
import socket
import sys
from pathlib import Path

import typer

from domain.attempt import ClientContext
from infra.providers.delivery.factory import build_code_senders, close_code_senders
from infra.resources import ExpectedFailure, open_resources
from starters.cli.plumbing import console, err_console, run_async, settings_or_exit
from starters.record_import import ImportKind, ImportRefused, report_json, report_lines, run_import
from starters.staff_changes.actions import StaffServices
from starters.workflow_client import AttemptGateway

MAX_FILE_BYTES = 16 * 1024 * 1024


def import_records(
    kind: ImportKind = typer.Argument(..., help="customers, contacts or invoices."),
    file: Path = typer.Argument(..., help="The CSV file (UTF-8, header row first).", exists=False),
    commit: bool = typer.Option(False, "--commit", help="Write the good rows (default: a dry run)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON report on stdout."),
) -> None:
    """Check (and with --commit, write) customers, contacts or invoices from a CSV file."""
    settings = settings_or_exit()
    try:
        if file.stat().st_size > MAX_FILE_BYTES:
            err_console.print(f"[red]error:[/] {file} is over {MAX_FILE_BYTES // (1024 * 1024)} MiB")
            raise typer.Exit(1)
        data = file.read_bytes()
    except OSError as exc:
        err_console.print(f"[red]error:[/] cannot read {file}: {exc.strerror}")
        raise typer.Exit(1) from None

    @run_async
    async def go() -> bool:
        client = ClientContext(actor="cli", user_agent=f"portalpay-cli import on {socket.gethostname()}")
        async with open_resources(settings) as resources:
            senders = build_code_senders(settings, resources.pool)
            try:
                services = StaffServices(
                    settings=settings,
                    pool=resources.pool,
                    gateway=AttemptGateway(resources.client, resources.pool, settings),
                    senders=senders,
                )

                def progress(n: int) -> None:
                    err_console.print(f"{n} rows checked…", highlight=False)

                try:
                    report = await run_import(
                        services,
                        kind,
                        data,
                        commit=commit,
                        client=client,
                        progress=None if as_json else progress,
                    )
                except ImportRefused as exc:
                    raise ExpectedFailure(f"{file}: {exc}") from None
            finally:
                await close_code_senders(senders)
        if as_json:
            print(json.dumps(report_json(report)), flush=True)
        else:
            for line in report_lines(report):
                console.print(line, highlight=False, soft_wrap=True, markup=False)
        return report.ok

    if not go():
        sys.exit(1)
