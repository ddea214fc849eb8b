"""The portal's one app factory: customer API, staff API, pages, health, the dev outbox, and (in
`build_portal_app`) the codec endpoint, provider webhooks and request metrics.

`build_portal_app` is the whole portal process's app, so `portalpay portal`, `portalpay dev`, the
bench and the tests serve the same app. `create_app` is the part that needs no Temporal client of
its own (the gateway is handed in); both take what they talk to and open no connection themselves.
"""

import hashlib
import hmac
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import asyncpg
from fastapi import FastAPI, Query, Request, Response
from fastapi.staticfiles import StaticFiles
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from domain.attempt import DeliveryStatusEvent
from domain.channels import Channel
from infra.codec import AesGcmPayloadCodec
from infra.metrics import add_request_metrics
from infra.pay_links import signer_from_settings
from infra.providers.delivery.base import CodeSender
from infra.providers.delivery.console import ConsoleSender
from infra.providers.delivery.factory import build_code_senders
from infra.settings import Settings
from starters.portal.api_v1 import install_api_v1
from starters.portal.api_v1.webhook_endpoints import webhook_endpoints_router
from starters.portal.codec_api import (
    CODEC_PREFIX,
    OperatorSignIn,
    add_codec_cors,
    add_codec_security_headers,
    codec_router,
    parse_origins,
)
from starters.portal.codec_api import MAX_BODY_BYTES as CODEC_MAX_BODY_BYTES
from starters.portal.customer import api as customer_api
from starters.portal.customer import pages
from starters.portal.customer import payment_status as payment_status_api
from starters.portal.deps import Deps, PortalDeps
from starters.portal.edge import ForwardedClient, RequestGuard
from starters.portal.errors import install_error_handlers
from starters.portal.schemas import Health, OutboxMessage
from starters.portal.staff import api as staff_api
from starters.portal.staff import invoice_api as staff_invoice_api
from starters.portal.staff import proof_routes
from starters.portal.staff.console import install_staff_console
from starters.portal.staff.console.imports import IMPORT_PATH
from starters.portal.staff.console.imports import MAX_UPLOAD_BYTES as IMPORT_MAX_BYTES
from starters.portal.webhooks.processor import processor_webhook_router
from starters.portal.webhooks.twilio import twilio_status_router
from starters.staff_changes.actions import StaffServices
from starters.workflow_client import AttemptGateway
from workflows.pay_invoice import PayInvoiceWorkflow

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
        # Swagger UI and ReDoc load their scripts from a CDN: never on the staff origin outside
        # dev (docs/operations.md). /openapi.json stays (SPEC §4).
        docs_url="/docs" if settings.is_dev else None,
        redoc_url="/redoc" if settings.is_dev else None,
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

    @app.middleware("http")
    async def _no_store(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        if request.url.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if not settings.is_dev:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
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


def build_portal_app(
    settings: Settings, client: Client, pool: asyncpg.Pool, *, task_queue: str | None = None
) -> FastAPI:
    """The whole portal process's app: `create_app` plus the codec endpoint, webhooks and metrics."""
    gateway = AttemptGateway(client, pool, settings, task_queue=task_queue)
    # Payment-request links go out through the same email provider as codes.
    senders = build_code_senders(settings, pool)
    link_sender = senders[Channel.EMAIL]
    app = create_app(settings, gateway, pool, link_sender=link_sender, notice_senders=senders)

    codec = AesGcmPayloadCodec(settings.codec_key_ring())
    app.include_router(
        codec_router(
            codec,
            settings.secret("operator_api_token"),
            sign_in=OperatorSignIn.from_settings(settings, pool),
            secure_cookie=None if settings.is_dev else True,
        )
    )
    add_codec_cors(app, parse_origins(settings.codec_cors_origins))
    add_codec_security_headers(app, settings)

    async def signal_attempt(workflow_id: str, run_id: str, event: DeliveryStatusEvent) -> None:
        handle = client.get_workflow_handle_for(PayInvoiceWorkflow.run, workflow_id, run_id=run_id)
        try:
            await handle.signal(PayInvoiceWorkflow.delivery_status, event)
        except RPCError as err:
            # A report about an attempt that already ended changes nothing; the row keeps the status.
            if err.status is not RPCStatusCode.NOT_FOUND:
                raise

    app.include_router(twilio_status_router(settings, pool, signal_attempt))
    app.include_router(processor_webhook_router(settings, pool, client, gateway.task_queue))
    add_request_metrics(app)
    return app
