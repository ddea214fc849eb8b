"""`portalpay nacha …` (SPEC §13): send the due entries now, list and show the files sent, read a
return or notice-of-change file by hand. `show` never prints a full account number."""

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import typer

from domain.ach_files import IngestReport, OriginationReport
from infra.nacha.file_format import mask_account_numbers
from infra.nacha.inbound import Inbound
from infra.nacha.sealing import Sealer
from infra.resources import ExpectedFailure, open_pool
from infra.settings import Settings, SettingsError
from infra.temporal import connect
from starters.cli.output import emit_table, say, to_jsonable
from starters.cli.plumbing import console, err_console, run_async, settings_or_exit
from workers.schedules import send_nacha_file_now

nacha_app = typer.Typer(help="Bank-direct ACH: NACHA files to the bank, returns back.", no_args_is_help=True)


def _nacha_settings() -> Settings:
    settings = settings_or_exit()
    if settings.processor != "nacha":
        err_console.print("[red]error:[/] PROCESSOR is not nacha: there are no NACHA files to handle")
        raise typer.Exit(1)
    try:
        settings.nacha_config()
    except SettingsError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    return settings


@nacha_app.command("send-now")
def send_now(
    as_json: bool = typer.Option(False, "--json", help="The run's report as JSON."),
    timeout: float = typer.Option(300.0, "--timeout", min=1, help="Seconds to wait for a worker to run it."),
) -> None:
    """Write one file of the entries due now and upload it (one try; the Schedule keeps retrying)."""
    settings = _nacha_settings()

    async def go() -> OriginationReport | None:
        client = await connect(settings)
        try:
            return await asyncio.wait_for(send_nacha_file_now(client, settings.temporal_task_queue), timeout)
        except TimeoutError:
            return None

    report = run_async(go)()
    if report is None:
        err_console.print(
            "[red]error:[/] no worker ran it in time (is `portalpay worker` running with PROCESSOR=nacha?)"
        )
        raise typer.Exit(1)
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    elif report.nothing_due:
        say(console, "No entries are due: no file written.")
    elif report.uploaded:
        say(
            console,
            f"Uploaded {report.file_name}: {report.entries} entries ({report.prenotes} prenotes),"
            f" debits {report.debit_total_cents / 100:,.2f} USD.",
        )
        for name in report.more_files:
            say(console, f"Uploaded {name} too: the entries that came due while the first waited.")
    else:
        say(console, f"[red]Not uploaded[/] {report.file_name}: {report.error}. Its entries stay unsent.")
    raise typer.Exit(0 if report.uploaded or report.nothing_due else 2)


async def _files(settings: Settings) -> list[dict[str, Any]]:
    async with open_pool(settings) as pool:
        rows = await pool.fetch(
            "SELECT name, created_at, uploaded_at, entry_count, prenote_count, debit_total_cents, status,"
            " upload_attempts, last_error, sha256 FROM ach_files ORDER BY created_at DESC LIMIT 500"
        )
    return [dict(r) for r in rows]


@nacha_app.command("files")
def files(as_json: bool = typer.Option(False, "--json", help="JSON on stdout.")) -> None:
    """The files written for the bank: name, time, entries, debit total, status."""
    settings = _nacha_settings()
    rows = run_async(_files)(settings)
    if as_json:
        typer.echo(json.dumps(to_jsonable(rows), indent=2))
        return
    emit_table(
        console,
        "NACHA files",
        ["name", "created", "entries", "prenotes", "debit total", "status", "attempts"],
        [
            [
                r["name"],
                f"{r['created_at']:%Y-%m-%d %H:%M}",
                str(r["entry_count"]),
                str(r["prenote_count"]),
                f"{r['debit_total_cents'] / 100:,.2f}",
                r["status"],
                str(r["upload_attempts"]),
            ]
            for r in rows
        ],
    )


async def _show(settings: Settings, name: str) -> str:
    sealer = Sealer(settings.secret("nacha_account_key"))
    async with open_pool(settings) as pool:
        row = await pool.fetchrow("SELECT id, body_sealed FROM ach_files WHERE name = $1 OR id = $1", name)
    if row is None:
        raise ExpectedFailure(f"no NACHA file named {name} (see `portalpay nacha files`)")
    return mask_account_numbers(sealer.open(row["body_sealed"], bound_to=row["id"]).decode("utf-8"))


@nacha_app.command("show")
def show(name: str = typer.Argument(..., help="The file's name, as `nacha files` lists it.")) -> None:
    """Print one file as sent, with account numbers masked."""
    settings = _nacha_settings()
    text = run_async(_show)(settings, name)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


async def _ingest(settings: Settings, name: str, body: bytes) -> IngestReport:
    config = settings.nacha_config()
    client = await connect(settings)
    async with open_pool(settings) as pool:
        inbound = Inbound(
            pool,
            config,
            Sealer(settings.secret("nacha_account_key")),
            settings.audit_key(),
            client,
            settings.temporal_task_queue,
        )
        return await inbound.ingest(name, body, source="cli")


@nacha_app.command("ingest")
def ingest(
    file: Path = typer.Argument(..., help="A return / notice-of-change file from the bank."),
    as_json: bool = typer.Option(False, "--json", help="The report as JSON."),
) -> None:
    """Read one return or notice-of-change file now (a file is ingested once, by its content)."""
    settings = _nacha_settings()
    try:
        body = file.read_bytes()
    except OSError as exc:
        err_console.print(f"[red]error:[/] cannot read {file}: {exc.strerror}")
        raise typer.Exit(1) from None
    report = run_async(_ingest)(settings, file.name, body)
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        raise typer.Exit(0)
    if report.already_ingested:
        say(console, f"{report.name} was ingested before (same content): nothing changed.")
        raise typer.Exit(0)
    say(
        console,
        f"{report.name}: {report.returns} return(s), {report.notices} notice(s) of change,"
        f" {len(report.unknown_traces)} unknown trace number(s), {report.events_delivered} event(s) delivered.",
    )
    for trace in report.unknown_traces:
        say(console, f"  unknown trace {trace}: listed on /staff/attention")
    for problem in report.problems:
        where = f"line {problem.line}: " if problem.line else ""
        say(console, f"  [yellow]skipped[/] {where}{problem.message}")
    raise typer.Exit(0)
