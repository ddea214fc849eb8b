"""Opening what every command needs (settings, PostgreSQL, Temporal) with one-line failures."""

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
from temporalio.client import Client

from infra.db import create_pool, resolve_database_url
from infra.settings import Settings
from infra.temporal import connect


class ExpectedFailure(Exception):
    """A failure a person can fix (unreachable dependency, bad argument): printed as one line."""


@dataclass
class Resources:
    settings: Settings
    pool: asyncpg.Pool
    client: Client


@contextlib.asynccontextmanager
async def open_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(resolve_database_url(settings))
    try:
        yield pool
    finally:
        await pool.close()


@contextlib.asynccontextmanager
async def open_resources(settings: Settings, *, client: Client | None = None) -> AsyncIterator[Resources]:
    async with open_pool(settings) as pool:
        yield Resources(settings, pool, client or await connect(settings))
