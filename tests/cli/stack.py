"""Helpers for running the real `portalpay` command against the test servers: fresh databases, free ports."""

import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from tests.support import free_port as support_free_port


def free_port() -> int:
    """A free port from this xdist worker's own range (tests.support.free_port)."""
    return support_free_port()


async def fresh_database(pool: asyncpg.Pool, database_url: str) -> str:
    """A new, empty database on the test server; its URL."""
    name = f"cli_{uuid.uuid4().hex[:12]}"
    await pool.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def one_line_error(stderr: str) -> str:
    """The single line an expected failure prints; fails on a traceback or a multi-line answer."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]
