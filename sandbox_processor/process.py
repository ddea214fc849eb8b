"""Runs the sandbox processor on the host and port of PROCESSOR_SANDBOX_URL."""

import asyncio
from urllib.parse import urlsplit

import uvicorn

from infra.db import create_pool, resolve_database_url
from infra.settings import Settings
from sandbox_processor.app import create_processor_app


def listen_address(settings: Settings) -> tuple[str, int]:
    parts = urlsplit(settings.processor_sandbox_url)
    return parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)


async def serve_processor(settings: Settings, *, database_url: str | None = None) -> None:
    # Like the worker and the portal: the app's role, tables made by `portalpay db migrate`.
    dsn = database_url or resolve_database_url(settings)
    pool = await create_pool(dsn)
    host, port = listen_address(settings)
    app = create_processor_app(settings, pool)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    try:
        await server.serve()
    finally:
        await pool.close()


def run_processor(settings: Settings) -> None:
    asyncio.run(serve_processor(settings))
