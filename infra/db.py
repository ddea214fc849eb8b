"""PostgreSQL: the one named by DATABASE_URL, else an embedded one (pgserver) under `.portalpay/`.

Migrations are plain SQL files applied in name order, each once, under an advisory lock so two
processes starting together do not race.
"""

import contextlib
import importlib.resources
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from infra.settings import STATE_DIR, Settings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_MIGRATION_LOCK = 7_357_001


class DatabaseUnavailable(Exception):
    pass


def embedded_database_url(data_dir: Path | None = None, *, cleanup_mode: str = "stop") -> str:
    """Start (or join) the embedded PostgreSQL and return its URL."""
    import warnings

    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    from pgserver.postgres_server import get_server  # lazily: pulls in psutil, platformdirs

    target = (data_dir or STATE_DIR / "pgdata").resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    with server_user_ready():
        # "stop": the last process using it stops it (pgserver counts its users), so Ctrl-C is clean.
        server = get_server(str(target), cleanup_mode=cleanup_mode)
    return str(server.get_uri())


_SERVER_USER = "pgserver"  # the system user pgserver runs PostgreSQL as when we are root


@contextlib.contextmanager
def server_user_ready() -> Iterator[None]:
    """Make pgserver's system user exist before a server starts, once per machine.

    As root, pgserver runs PostgreSQL as the system user `pgserver`, which it creates with `useradd`
    on first use. On a fresh machine the suite's two workers start their servers at once and raced
    that creation: one worker's `initdb` was refused its own data directory and every test on it
    errored. The first process to need the user creates it under a file lock and starts its server
    before letting the next one in; once the user exists nothing waits.
    """
    if os.name != "posix" or os.geteuid() != 0 or _user_exists(_SERVER_USER):
        yield
        return
    import fcntl

    from pgserver.utils import ensure_user_exists

    with open(Path(tempfile.gettempdir()) / "portalpay-pgserver-user.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ensure_user_exists(_SERVER_USER)
        yield


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


APP_ROLE = "portalpay_app"


def with_user(url: str, user: str, password: str | None = None) -> str:
    """The same server and database, logged in as another role."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    credentials = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    return urlunsplit(parts._replace(netloc=f"{credentials}@{host}"))


def resolve_database_url(settings: Settings) -> str:
    """Where the app connects: DATABASE_URL, else the embedded server as the app's own role."""
    return settings.database_url or with_user(embedded_database_url(), APP_ROLE)


def resolve_migration_url(settings: Settings) -> str:
    """Where migrations run: the owner's connection."""
    return settings.database_migration_url or settings.database_url or embedded_database_url()


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    try:
        pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, command_timeout=30)
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailable(f"cannot reach PostgreSQL: {exc}") from exc
    assert pool is not None
    return pool


def _migration_files() -> list[Path]:
    """The SQL files, whether run from a checkout or from an installed wheel (a package there)."""
    if MIGRATIONS_DIR.is_dir():
        return sorted(MIGRATIONS_DIR.glob("*.sql"))
    files = importlib.resources.files("migrations")
    return sorted(Path(str(f)) for f in files.iterdir() if f.name.endswith(".sql"))


async def migrate(conn: asyncpg.Connection, *, app_password: str | None = None) -> list[str]:
    """Apply pending migrations; returns the names applied. With `app_password`, the app's role
    logs in with it afterwards (a deployment's password auth; the embedded server trusts)."""
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for path in _migration_files():
            if path.name in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", path.name)
            applied.append(path.name)
            log.info("applied migration %s", path.name)
        if app_password:
            statement = await conn.fetchval(
                "SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', $1::text, $2::text)",
                APP_ROLE,
                app_password,
            )
            await conn.execute(statement)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied


async def migrate_url(dsn: str, *, app_password: str | None = None) -> list[str]:
    try:
        conn = await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailable(f"cannot reach PostgreSQL: {exc}") from exc
    try:
        return await migrate(conn, app_password=app_password)
    finally:
        await conn.close()
