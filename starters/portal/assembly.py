"""Assembles the portal process: customer/staff API and pages, codec endpoint, Twilio callbacks, metrics.

One place so `portalpay portal`, `portalpay dev`, the bench and the tests serve the same app.
"""

import asyncpg
from fastapi import FastAPI
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from domain.attempt import DeliveryStatusEvent
from domain.channels import Channel
from infra.codec import AesGcmPayloadCodec
from infra.metrics import add_request_metrics
from infra.providers.delivery.factory import build_code_senders
from infra.settings import Settings
from starters.portal.app import create_app
from starters.portal.codec_api import (
    OperatorSignIn,
    add_codec_cors,
    add_codec_security_headers,
    codec_router,
    parse_origins,
)
from starters.portal.webhooks.processor import processor_webhook_router
from starters.portal.webhooks.twilio import twilio_status_router
from starters.workflow_client import AttemptGateway
from workflows.pay_invoice import PayInvoiceWorkflow


def build_portal_app(
    settings: Settings, client: Client, pool: asyncpg.Pool, *, task_queue: str | None = None
) -> FastAPI:
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
