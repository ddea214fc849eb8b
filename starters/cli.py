"""The `portalpay` command line (SPEC §8). Expected failures print one line and exit non-zero."""

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import typer
from rich.console import Console

from infra.db import DatabaseUnavailable, migrate_url, resolve_database_url
from infra.settings import Settings, SettingsError, load_settings
from infra.temporal import TemporalUnavailable
from starters.attempts import AttemptNotFound, AttemptRefused
from starters.bench import bench_app
from starters.chaos import chaos_app
from starters.ops import ops_app
from starters.replay import replay
from starters.resources import ExpectedFailure

app = typer.Typer(help="PortalPay: OTP-protected invoice payments on Temporal.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
demo_app = typer.Typer(help="Demo data.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(bench_app, name="bench")
app.add_typer(chaos_app, name="chaos")
app.add_typer(ops_app, name="ops")
app.command("replay")(replay)

console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")

EXPECTED = (
    SettingsError,
    DatabaseUnavailable,
    TemporalUnavailable,
    AttemptRefused,
    AttemptNotFound,
    ExpectedFailure,
)


def run_async(coro_fn: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
    """Run a command's coroutine; turn expected failures into one red line and exit code 1."""

    @functools.wraps(coro_fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return asyncio.run(coro_fn(*args, **kwargs))
        except EXPECTED as exc:
            err_console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None

    return wrapper


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None


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
        applied = await migrate_url(resolve_database_url(settings))
        console.print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}")

    go()


@demo_app.command("seed")
def demo_seed() -> None:
    """Load the SPEC demo customers, contacts and invoices (idempotent)."""
    from starters.demo_data import seed_demo
    from starters.resources import open_pool

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
    from starters.worker_process import run_worker_process

    settings = settings_or_exit()
    run_async(run_worker_process)(settings)


@app.command()
def portal(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="Port to listen on."),
) -> None:
    """Serve the customer portal, staff API and codec endpoint."""
    from starters.portal_process import run_portal_process

    settings = settings_or_exit()
    run_async(run_portal_process)(settings, host=host, port=port)


@app.command("try")
def try_invoice(
    invoice_id: str = typer.Argument(..., help="Invoice to pay, e.g. INV-1001."),
    channel: str | None = typer.Option(None, help="email or sms (default: the first on file)."),
    account: str = typer.Option("000123456789", help="Sandbox account number (decides the outcome)."),
    method: str = typer.Option("echeck", help="echeck or ach."),
) -> None:
    """Run a whole attempt from the terminal: open, send a code, read it, verify, pay."""
    from starters.try_attempt import run_try

    settings = settings_or_exit()
    ok = run_async(run_try)(settings, invoice_id, channel=channel, account=account, method=method)
    if not ok:
        raise typer.Exit(2)


@app.command()
def dev(
    portal_port: int = typer.Option(8000, help="Portal port."),
    temporal_port: int = typer.Option(7233, help="Temporal frontend port."),
    ui_port: int = typer.Option(8233, help="Temporal UI port."),
) -> None:
    """Everything on one laptop: Temporal dev server + UI, embedded PostgreSQL, worker, portal."""
    from starters.devstack import run_dev

    run_async(run_dev)(portal_port=portal_port, temporal_port=temporal_port, ui_port=ui_port)


if __name__ == "__main__":  # pragma: no cover
    app()
