"""The portal as one FastAPI app: customer API, staff API, pages, health, and the dev outbox.

`create_app` takes what it talks to (settings, the attempt gateway, the PostgreSQL pool) so the
CLI, `portalpay dev` and the tests wire it the same way; it opens no connection itself.
"""

import hashlib
import hmac
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import asyncpg
from fastapi import FastAPI, Query, Request, Response
from fastapi.staticfiles import StaticFiles
from temporalio.service import RPCError

from domain.channels import Channel
from infra.pay_links import signer_from_settings
from infra.providers.delivery.base import CodeSender
from infra.providers.delivery.console import ConsoleSender
from infra.settings import Settings
from starters.portal import (
    customer_api,
    pages,
    payment_status_api,
    proof_routes,
    staff_api,
    staff_invoice_api,
)
from starters.portal.api_v1 import install_api_v1
from starters.portal.api_v1.webhook_endpoints import webhook_endpoints_router
from starters.portal.codec_api import CODEC_PREFIX
from starters.portal.codec_api import MAX_BODY_BYTES as CODEC_MAX_BODY_BYTES
from starters.portal.dependencies import Deps, PortalDeps, error_response, install_error_handlers
from starters.portal.edge import ForwardedClient, RequestGuard
from starters.portal.schemas import Health, OutboxMessage
from starters.portal.staff_actions import StaffServices
from starters.portal.staff_console import install_staff_console
from starters.portal.staff_console.imports import IMPORT_PATH
from starters.portal.staff_console.imports import MAX_UPLOAD_BYTES as IMPORT_MAX_BYTES
from starters.workflow_client import AttemptGateway

STATIC_DIR = Path(__file__).resolve().parent / "static"


def create_app(
    settings: Settings,
    gateway: AttemptGateway,
    pool: asyncpg.Pool,
    *,
    link_sender: CodeSender | None = None,
    notice_senders: Mapping[Channel, CodeSender] | None = None,
) -> FastAPI:
    """The portal app. `link_sender` delivers payment-request links (default: the console outbox)."""
    app = FastAPI(
        title="PortalPay portal",
        version="1.0",
        description=(
            "Pay Your Invoice with an OTP sent to the Customer Portal Payer (SPEC §4). Customer calls "
            "carry the pay-link token; staff calls carry STAFF_API_TOKEN."
        ),
    )
    app.state.portal = PortalDeps(
        settings=settings,
        gateway=gateway,
        pool=pool,
        signer=signer_from_settings(settings),
        link_sender=link_sender or ConsoleSender(pool, echo=settings.is_dev),
        staff_token=settings.secret("staff_api_token"),
        request_id_key=hmac.new(
            settings.secret("link_signing_key").encode(), b"portalpay/update-id/v1", hashlib.sha256
        ).digest(),
        audit_key=settings.audit_key(),
    )
    console_sender = ConsoleSender(pool, echo=settings.is_dev)
    # Payer-change notices (SPEC §11) go by email and by SMS; default: the console outbox.
    app.state.staff_services = StaffServices(
        settings=settings,
        gateway=gateway,
        pool=pool,
        senders=dict(notice_senders or {Channel.EMAIL: console_sender, Channel.SMS: console_sender}),
    )
    install_error_handlers(app)
    _install_unavailable_handlers(app)

    @app.middleware("http")
    async def _no_store(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        if request.url.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    install_api_v1(app, settings, pool)

    # Added last, so they run first: nothing below sees a malformed path, an oversized body or
    # a forged client address.
    app.add_middleware(
        RequestGuard,
        max_bytes=settings.max_request_bytes,
        limits=[(CODEC_PREFIX, CODEC_MAX_BODY_BYTES), (IMPORT_PATH, IMPORT_MAX_BYTES)],
    )
    app.add_middleware(ForwardedClient, trusted=settings.trusted_proxy_networks)

    app.include_router(customer_api.router)
    app.include_router(payment_status_api.router)
    app.include_router(staff_api.router)
    app.include_router(staff_invoice_api.router)
    app.include_router(proof_routes.api_router)
    app.include_router(proof_routes.console_router)
    app.include_router(pages.router)
    app.include_router(webhook_endpoints_router(settings, pool, gateway.client, gateway.task_queue))
    install_staff_console(app, settings)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/healthz", tags=["ops"], summary="Liveness and database reachability")
    async def healthz(deps: Deps, response: Response) -> Health:
        try:
            await deps.pool.fetchval("SELECT 1")
            database = True
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            database = False
            response.status_code = 503
        return Health(status="ok" if database else "degraded", database=database)

    if settings.is_dev:
        # Dev mode only: in prod this route does not exist, so it answers 404 like any unknown path.
        @app.get("/dev/outbox", tags=["dev"], summary="Messages the console provider 'sent', newest last")
        async def dev_outbox(
            deps: Deps,
            channel: Channel | None = None,
            to: Annotated[str | None, Query(max_length=320, pattern=r"^[^\x00]*$")] = None,
            limit: Annotated[int, Query(ge=1, le=1000)] = 200,
        ) -> list[OutboxMessage]:
            rows = await deps.pool.fetch(
                "SELECT * FROM (SELECT id, channel, to_address, subject, body, created_at FROM dev_outbox"
                " WHERE ($1::text IS NULL OR channel = $1) AND ($2::text IS NULL OR to_address = $2)"
                " ORDER BY id DESC LIMIT $3) newest ORDER BY id",
                channel.value if channel else None,
                to,
                limit,
            )
            return [
                OutboxMessage(
                    channel=r["channel"],
                    to=r["to_address"],
                    subject=r["subject"],
                    body=r["body"],
                    created_at=r["created_at"],
                )
                for r in rows
            ]

    return app


def _install_unavailable_handlers(app: FastAPI) -> None:
    """A dependency being down is a 503 the customer can retry, not a 500."""

    @app.exception_handler(RPCError)
    async def _temporal_down(_: Request, exc: RPCError):  # type: ignore[no-untyped-def]
        return error_response(503, "Unavailable", "Payments are briefly unavailable. Please try again.")

    async def _db_down(_: Request, exc: Exception):  # type: ignore[no-untyped-def]
        return error_response(503, "Unavailable", "Payments are briefly unavailable. Please try again.")

    # A PostgreSQL restart surfaces as any of these, depending on where the connection broke.
    for down in (
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
        asyncpg.CannotConnectNowError,
        ConnectionError,
        OSError,
    ):
        app.add_exception_handler(down, _db_down)
