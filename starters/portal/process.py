"""`portalpay portal`: the portal app under uvicorn against TEMPORAL_ADDRESS and DATABASE_URL.

uvicorn's access log writes every request line. A pay link's path is its bearer token, the
Temporal UI's codec path holds a key, and a query may hold an email, so the log gets the line with
those parts replaced (SPEC §11: "the access log writes `/pay/…`"). The filter sits on the
`uvicorn.access` logger itself, so every handler anyone attaches sees only the redacted line.
"""

import copy
import logging
import re
from typing import Any

import asyncpg
import uvicorn
from fastapi import FastAPI
from temporalio.client import Client
from uvicorn.config import LOGGING_CONFIG

from infra.metrics import start_metrics_server
from infra.resources import open_pool
from infra.settings import PORTAL_SECRETS, Settings
from infra.temporal import connect
from starters.portal.app import build_portal_app
from starters.portal.codec_api import codec_ui_endpoint

REDACTED = "…"
ACCESS_LOGGER = "uvicorn.access"
# Path prefixes whose next segment is a credential.
_SECRET_AFTER = ("/pay/", "/codec/ui/")
# Anything long enough to be a token or key, in any segment: base64url runs and dotted tokens.
_TOKENISH = re.compile(r"^[A-Za-z0-9_\-]{32,}$|^[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-.]{16,}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def redact_path(path_with_query: str) -> str:
    """The request target as the access log may show it: no token, key or query value."""
    path, sep, query = path_with_query.partition("?")
    segments = path.split("/")
    redacted: list[str] = []
    for index, segment in enumerate(segments):
        so_far = "/".join(segments[:index]) + "/"
        if any(so_far == prefix for prefix in _SECRET_AFTER) or (
            _TOKENISH.match(segment) and not _UUID.match(segment)
        ):
            redacted.append(REDACTED if segment else segment)
        else:
            redacted.append(segment)
    shown = "/".join(redacted)
    if sep:
        keys = [part.partition("=")[0] for part in query.split("&") if part]
        shown += "?" + "&".join(f"{key[:40]}={REDACTED}" for key in keys)
    return shown


class RedactAccessLog(logging.Filter):
    """Rewrites uvicorn's access record (client, method, path, http version, status) in place."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (args[0], args[1], redact_path(args[2]), *args[3:])
        elif isinstance(record.msg, str):
            record.msg = " ".join(
                redact_path(word) if word.startswith("/") else word for word in record.msg.split(" ")
            )
        return True


def install_access_log_redaction() -> None:
    """Idempotent: attach the filter to the access logger (for servers configured elsewhere)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactAccessLog) for f in logger.filters):
        logger.addFilter(RedactAccessLog())


def portal_log_config() -> dict[str, Any]:
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_access"] = {"()": RedactAccessLog}
    config["loggers"][ACCESS_LOGGER]["filters"] = ["redact_access"]
    return config


def portal_server_config(app: FastAPI, *, host: str, port: int, log_level: str = "info") -> uvicorn.Config:
    """One uvicorn configuration for every way the portal is served.

    `proxy_headers` is off: uvicorn would believe `X-Forwarded-For` from FORWARDED_ALLOW_IPS; the
    app's own `ForwardedClient` believes it from TRUSTED_PROXIES only.
    """
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        log_config=portal_log_config(),
        proxy_headers=False,
        server_header=False,
    )


def temporal_ui_codec_endpoint(settings: Settings) -> str:
    """What `temporal server start-dev --ui-codec-endpoint` is given: this portal's codec UI path."""
    return codec_ui_endpoint(settings.portal_base_url, settings.secret("operator_api_token"))


def portal_server(
    settings: Settings, client: Client, pool: asyncpg.Pool, *, host: str, port: int, log_level: str = "info"
) -> uvicorn.Server:
    """The whole portal app under uvicorn, not yet serving: `portalpay portal` and `portalpay dev`
    (which serves it beside the worker) launch the portal only through this module."""
    app = build_portal_app(settings, client, pool)
    return uvicorn.Server(portal_server_config(app, host=host, port=port, log_level=log_level))


async def run_portal_process(settings: Settings, *, host: str, port: int) -> None:
    settings.refuse_unsafe_prod(PORTAL_SECRETS)
    client = await connect(settings)
    async with open_pool(settings) as pool:
        server = portal_server(settings, client, pool, host=host, port=port)
        if settings.portal_metrics_port:
            start_metrics_server(settings.portal_metrics_port)
        install_access_log_redaction()
        await server.serve()
