"""Running `portalpay` against the test dev server and database: as the real executable in a
subprocess (`run_cli`), or its Typer app in this process (`run_cli_in_process`, the same answer
without a second or two of interpreter start-up and imports).

Use the subprocess where the test is about the process: the installed executable, its exit status
(signals, the `os._exit` in `starters.cli.app.run`), what it reads from a real environment, a pipe.
Each command family keeps at least one such test; the rest are about what a command does and
prints, which the in-process run answers the same way.
"""

import asyncio
import contextlib
import os
import secrets
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path

import asyncpg
from rich.console import Console
from temporalio.client import Client
from typer.testing import CliRunner

from infra.db import APP_ROLE, with_user
from tests.support import BIN_DIR, TEST_CODEC_KEYS, TestInvoice, create_invoice
from tests.support import test_settings as settings_for_tests

PORTALPAY = str(BIN_DIR / "portalpay")


def cli_env(client: Client, database_url: str, state_dir: Path, **extra: str) -> dict[str, str]:
    """The environment a deployed command would see, pointed at the test servers."""
    settings = settings_for_tests()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TEMPORAL_", "PORTALPAY_", "OTP_", "CODEC_", "WORKER_"))
        and not k.startswith("DATABASE_")
    }
    env.update(
        PORTALPAY_ENV="dev",
        PORTALPAY_STATE_DIR=str(state_dir),
        # Least privilege as deployed: the app's role, the owner only for migrations.
        DATABASE_URL=with_user(database_url, APP_ROLE),
        DATABASE_MIGRATION_URL=database_url,
        TEMPORAL_ADDRESS=client.service_client.config.target_host,
        TEMPORAL_NAMESPACE=client.namespace,
        CODEC_KEYS=TEST_CODEC_KEYS,
        OTP_HMAC_KEY=settings.secret("otp_hmac_key"),
        AUDIT_CHAIN_KEY=settings.secret("audit_chain_key"),
        STAFF_API_TOKEN=settings.secret("staff_api_token"),
        OPERATOR_API_TOKEN=settings.secret("operator_api_token"),
        LINK_SIGNING_KEY=settings.secret("link_signing_key"),
        COLUMNS="250",
        NO_COLOR="1",
    )
    env.update(extra)
    return env


async def run_cli(*args: str, env: dict[str, str], cwd: Path, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        PORTALPAY, *args, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def run_cli_in_process(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 60
) -> tuple[int, str, str]:
    """`run_cli`'s answer from `starters.cli.app.app` run here, in a thread of its own (commands call
    `asyncio.run` themselves), with exactly `env` as the environment and `cwd` as the working folder
    while it runs (both put back after; a test runs alone in its xdist worker, whose environment no
    other worker shares). An exception the command does not handle is printed on stderr with exit
    status 1, as the interpreter would."""
    return await asyncio.wait_for(asyncio.to_thread(_invoke_app, list(args), env, cwd), timeout)


_in_process = threading.Lock()


def _invoke_app(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    from starters.cli.app import app

    # Every variable of this process that `env` leaves out is unset for the command, as in a
    # subprocess started with `env`; CliRunner puts them all back afterwards.
    overrides: dict[str, str | None] = {key: None for key in os.environ if key not in env}
    overrides.update(env)
    state_dir = Path(env.get("PORTALPAY_STATE_DIR", ".portalpay"))
    with _in_process, _no_os_exit(), _working_dir(cwd), _state_dir(state_dir), _consoles(env):
        result = CliRunner().invoke(app, args, env=overrides, prog_name="portalpay")
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return result.exit_code, result.stdout, stderr


@contextlib.contextmanager
def _no_os_exit() -> Iterator[None]:
    """A command leaves through SystemExit (`starters.cli.app.run` does the `os._exit`): one that
    called `os._exit` itself would end this test process without a word."""

    def refuse(status: int) -> None:
        raise AssertionError(f"the command called os._exit({status}); raise typer.Exit instead")

    real = os._exit
    os._exit = refuse  # type: ignore[assignment]
    try:
        yield
    finally:
        os._exit = real


@contextlib.contextmanager
def _working_dir(cwd: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(before)


@contextlib.contextmanager
def _state_dir(state_dir: Path) -> Iterator[None]:
    """`infra.settings` reads PORTALPAY_STATE_DIR once, at import: point it where the command's would."""
    import infra.settings as settings_module

    saved = (settings_module.STATE_DIR, settings_module.DEV_ENV_FILE)
    saved_env_file = settings_module.Settings.model_config.get("env_file")
    settings_module.STATE_DIR = state_dir
    settings_module.DEV_ENV_FILE = state_dir / "dev.env"
    settings_module.Settings.model_config["env_file"] = (settings_module.DEV_ENV_FILE, ".env")
    try:
        yield
    finally:
        settings_module.STATE_DIR, settings_module.DEV_ENV_FILE = saved
        settings_module.Settings.model_config["env_file"] = saved_env_file


def _cli_consoles() -> list[Console]:
    from starters.cli import plumbing, try_attempt

    return [plumbing.console, plumbing.err_console, try_attempt.console, try_attempt.progress_to_stderr]


@contextlib.contextmanager
def _consoles(env: dict[str, str]) -> Iterator[None]:
    """The commands' consoles were made when this process imported them; a new process would make
    them under `env`: its COLUMNS for the width, and no colour (a pipe, NO_COLOR)."""
    consoles = _cli_consoles()
    saved = [(c._width, c._color_system, c.no_color) for c in consoles]
    columns = env.get("COLUMNS", "")
    try:
        for c in consoles:
            c._width = int(columns) if columns.isdigit() else None
            c._color_system = None
            c.no_color = True
        yield
    finally:
        for c, (width, color_system, no_color) in zip(consoles, saved, strict=True):
            c._width, c._color_system, c.no_color = width, color_system, no_color


async def invoice_with_unique_contacts(pool: asyncpg.Pool) -> TestInvoice:
    """Unique destinations, so "the latest message to this phone" is this test's code."""
    tag = secrets.token_hex(5)
    return await create_invoice(
        pool, email=f"ops-{tag}@example.com", phone=f"+1555{int(tag, 16) % 10_000_000:07d}"
    )
