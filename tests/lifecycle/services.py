"""Real HTTP services on loopback for the lifecycle tests: the sandbox processor, the portal, receivers."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp

from tests.support import free_port as support_free_port

T = TypeVar("T")


@contextlib.asynccontextmanager
async def serve(app: ASGIApp, port: int = 0) -> AsyncIterator[str]:
    """Serves `app` on 127.0.0.1 (a free port unless given) and yields its base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{bound}"
    finally:
        server.should_exit = True
        await task


async def wait_for(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], *, timeout: float = 20.0, what: str = ""
) -> T:
    """Polls `probe` until `done(value)`; fails with the last value after `timeout`."""
    deadline = time.monotonic() + timeout
    value = await probe()
    while not done(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or 'condition'}; last value: {value!r}")
        await asyncio.sleep(0.1)
        value = await probe()
    return value


def free_port() -> int:
    """A free port from this xdist worker's own range (tests.support.free_port)."""
    return support_free_port()


class WebhookRecorder:
    """A webhook endpoint that records raw requests and can refuse the first N deliveries."""

    def __init__(self, refuse_first: int = 0) -> None:
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.refused = 0
        self.refuse_first = refuse_first
        self.app = FastAPI()

        from fastapi import Request, Response

        @self.app.post("/hook")
        async def hook(request: Request) -> Response:
            body = await request.body()
            if self.refused < self.refuse_first:
                self.refused += 1
                return Response(status_code=503)
            self.received.append((body, dict(request.headers)))
            return Response(status_code=200)

    def events(self) -> list[dict[str, Any]]:
        import json

        return [json.loads(b) for b, _ in self.received]
