"""`portalpay portal`: the portal app under uvicorn against TEMPORAL_ADDRESS and DATABASE_URL."""

import uvicorn

from infra.metrics import start_metrics_server
from infra.resources import open_pool
from infra.settings import Settings
from infra.temporal import connect
from starters.portal.assembly import build_portal_app


async def run_portal_process(settings: Settings, *, host: str, port: int) -> None:
    client = await connect(settings)
    async with open_pool(settings) as pool:
        app = build_portal_app(settings, client, pool)
        if settings.portal_metrics_port:
            start_metrics_server(settings.portal_metrics_port)
        server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level="info", proxy_headers=True)
        )
        await server.serve()
