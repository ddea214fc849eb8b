"""The `portalpay` command line (SPEC §8). Expected failures print one line and exit non-zero."""

import atexit
import logging
import os
import sys

import typer

from infra.db import migrate_url, resolve_migration_url
from infra.settings import SettingsError
from starters.cli.apikeys import apikey_app
from starters.cli.nacha import nacha_app
from starters.cli.ops import ops_app
from starters.cli.plumbing import console, err_console, run_async, settings_or_exit
from starters.cli.record_import import import_records
from starters.cli.replay import replay
from starters.cli.staff import staff_app

app = typer.Typer(help="PortalPay: OTP-protected invoice payments on Temporal.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
demo_app = typer.Typer(help="Demo data.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(nacha_app, name="nacha")
app.add_typer(ops_app, name="ops")
app.add_typer(staff_app, name="staff")
app.add_typer(apikey_app, name="apikey")
app.command("replay")(replay)
app.command("import")(import_records)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at INFO.")) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending schema migrations."""
    settings = settings_or_exit()

    @run_async
    async def go() -> None:
        password = settings.database_app_password
        applied = await migrate_url(
            resolve_migration_url(settings),
            app_password=password.get_secret_value() if password else None,
        )
        console.print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}")

    go()


@demo_app.command("seed")
def demo_seed() -> None:
    """Load the SPEC demo customers, contacts and invoices (idempotent)."""
    from infra.resources import open_pool
    from infra.stores.demo import seed_demo

    settings = settings_or_exit()

    @run_async
    async def go() -> None:
        async with open_pool(settings) as pool, pool.acquire() as conn:
            await seed_demo(conn)
        console.print("demo data ready: INV-1001, DEP-1001, INV-1002, INV-1003, INV-1004")

    go()


@app.command()
def worker() -> None:
    """Run a worker against TEMPORAL_ADDRESS and DATABASE_URL until SIGTERM/Ctrl-C."""
    from workers.process import run_worker_process

    settings = settings_or_exit()
    run_async(run_worker_process)(settings)


@app.command()
def portal(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="Port to listen on."),
) -> None:
    """Serve the customer portal, staff API and codec endpoint."""
    from starters.portal.process import run_portal_process

    settings = settings_or_exit()
    run_async(run_portal_process)(settings, host=host, port=port)


@app.command()
def processor() -> None:
    """Run the sandbox payment processor on the host and port of PROCESSOR_SANDBOX_URL (SPEC §9)."""
    from sandbox_processor.process import serve_processor
    from sandbox_processor.settings import load_processor_settings

    try:
        settings = load_processor_settings()  # the service's own settings, not the product's
    except SettingsError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    run_async(serve_processor)(settings)


@app.command("try")
def try_invoice(
    invoice_id: str = typer.Argument(..., help="Invoice to pay, e.g. INV-1001."),
    channel: str | None = typer.Option(None, help="email or sms (default: the first on file)."),
    account: str = typer.Option("000123456789", help="Sandbox account number (decides the outcome)."),
    method: str = typer.Option("echeck", help="echeck or ach."),
    as_json: bool = typer.Option(False, "--json", help="Progress on stderr, one JSON document on stdout."),
) -> None:
    """Run a whole attempt from the terminal: open, send a code, read it, verify, pay."""
    from starters.cli.try_attempt import run_try

    settings = settings_or_exit()
    ok = run_async(run_try)(
        settings, invoice_id, channel=channel, account=account, method=method, as_json=as_json
    )
    if not ok:
        raise typer.Exit(2)


@app.command()
def dev(
    portal_port: int = typer.Option(8000, help="Portal port."),
    temporal_port: int = typer.Option(7233, help="Temporal frontend port."),
    ui_port: int = typer.Option(8233, help="Temporal UI port."),
) -> None:
    """Everything on one laptop: Temporal dev server + UI, embedded PostgreSQL, worker, portal."""
    from starters.cli.dev_stack import run_dev

    run_async(run_dev)(portal_port=portal_port, temporal_port=temporal_port, ui_port=ui_port)


def run() -> None:
    """The `portalpay` executable: the Typer app, then an exit that skips the interpreter's teardown.

    The Temporal client's Rust runtime keeps threads that can touch the GIL while CPython finalizes,
    which aborts the process (`Fatal Python error: PyGILState_Release`, exit -6) after a command has
    done its work and printed its answer (temporalio/sdk-python#300; seen here as `ops stuck`
    exiting -6 under load). An operator's script must see the command's own exit status, so once
    the command returns we flush, run the atexit handlers (pgserver stops an embedded PostgreSQL
    there) and leave with `os._exit`.
    """
    try:
        app()
    except SystemExit as exc:
        status = _exit_status(exc.code)
    else:  # pragma: no cover - Typer always raises SystemExit in standalone mode
        status = 0
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said on it
            status = status or 1
    os._exit(status)


def _exit_status(code: object) -> int:
    """What `sys.exit(code)` would have exited with: None is 0, an int itself, anything else printed and 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


if __name__ == "__main__":  # pragma: no cover
    run()
