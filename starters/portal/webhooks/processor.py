"""Processor webhooks: `POST /webhooks/processor/{processor}` on the portal (SPEC §9).

The raw body is verified (`PortalPay-Signature`, HMAC-SHA256, 300 s tolerance, constant time)
before anything parses it. A verified event is stored once by its id in `processor_events`, then
delivered to the payment's workflow by signal-with-start. Answers: 400 bad signature or body; 202
stored, but no payment of ours matches (reconciliation looks again); 200 delivered, or a
duplicate of an event already applied (nothing changes; one stored but not yet applied is signalled
again, which the follower ignores if it has it); 503 when the workflow service is unreachable, so
the processor retries (the retry finds the stored event and delivers it).
"""

import json
import logging

import asyncpg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from temporalio.client import Client
from temporalio.service import RPCError

from domain.ach_payment import ProcessorEvent
from infra.settings import Settings
from infra.stores.processor_events import deliver_event, mark_delivered, store_event
from infra.webhook_signature import SIGNATURE_HEADER, SignatureError, verify

log = logging.getLogger(__name__)

MAX_EVENT_BYTES = 64 * 1024


def _answer(status: int, outcome: str) -> JSONResponse:
    return JSONResponse({"status": outcome}, status_code=status)


async def _read_capped(request: Request) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_EVENT_BYTES):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_EVENT_BYTES:
            return None
    return bytes(body)


def processor_webhook_router(
    settings: Settings, pool: asyncpg.Pool, client: Client, task_queue: str
) -> APIRouter:
    router = APIRouter()
    secret = settings.secret("processor_webhook_secret")

    @router.post("/webhooks/processor/{processor}", include_in_schema=True)
    async def processor_webhook(processor: str, request: Request) -> JSONResponse:
        if processor != settings.processor:
            return _answer(404, "unknown_processor")
        body = await _read_capped(request)
        if body is None:
            return _answer(413, "too_large")
        try:
            verify(secret, request.headers.get(SIGNATURE_HEADER), body)
        except SignatureError as exc:
            log.warning("processor webhook refused: %s", exc)
            return _answer(400, "bad_signature")
        try:
            event = ProcessorEvent.model_validate(json.loads(body))
        except (ValueError, ValidationError):
            return _answer(400, "malformed_event")
        stored = await store_event(pool, processor, event, source="webhook")
        if stored.payment_id is None:
            return _answer(202, "stored_unknown_payment")
        if stored.delivered:
            return _answer(200, "duplicate")
        try:
            await deliver_event(client, task_queue, stored.payment_id, event)
        except RPCError as exc:
            log.warning("processor event %s stored, not yet delivered: %s", event.id, exc.status)
            return _answer(503, "stored_not_delivered")
        await mark_delivered(pool, event.id)
        return _answer(200, "duplicate" if not stored.new else "delivered")

    return router
