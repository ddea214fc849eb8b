"""What every command shares: the consoles, settings-or-exit, and running a coroutine with one-line failures.

Command modules import from here, never from `starters.cli.app`, so nothing imports back up.
"""

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import typer
from rich.console import Console

from infra.db import DatabaseUnavailable
from infra.resources import ExpectedFailure
from infra.settings import Settings, SettingsError, load_settings
from infra.temporal import TemporalUnavailable
from starters.workflow_client import AttemptNotFound, AttemptRefused

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
