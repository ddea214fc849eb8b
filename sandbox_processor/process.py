"""Runs the sandbox processor on the host and port of PROCESSOR_SANDBOX_URL (`portalpay processor`)."""

import asyncio

import asyncpg
import uvicorn

from infra.db import create_pool
from sandbox_processor.app import create_processor_app
from sandbox_processor.settings import ProcessorSettings


def processor_server(settings: ProcessorSettings, pool: asyncpg.Pool) -> uvicorn.Server:
    """The service under uvicorn on its listen address, not yet serving."""
    host, port = settings.listen_address()
    app = create_processor_app(settings, pool)
    return uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))


async def serve_processor(settings: ProcessorSettings, *, database_url: str | None = None) -> None:
    # Like the worker and the portal: the app's role, tables made by `portalpay db migrate`.
    pool = await create_pool(database_url or settings.database_dsn())
    try:
        await processor_server(settings, pool).serve()
    finally:
        await pool.close()


def run_processor(settings: ProcessorSettings) -> None:
    asyncio.run(serve_processor(settings))
