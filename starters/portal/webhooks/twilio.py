"""Twilio message status callbacks: `POST /webhooks/twilio/status` on the portal app.

Twilio signs each callback (`X-Twilio-Signature`, HMAC-SHA1 with the auth token over the URL it
called and the form fields); the SDK's `RequestValidator` checks it against the public URL, i.e.
`TWILIO_STATUS_CALLBACK_URL` when set (it is also what the sender gives Twilio), else the URL the
request arrived at. A bad or missing signature is refused with 403.

The message is found by `MessageSid` in `otp_challenges.provider_message_id`. A status that moves
the challenge forward is recorded in `otp_challenges.delivery_status`; `delivered`, `undelivered`
and `failed` are also signalled to the attempt through the injected `signal_attempt`. Repeats and
late, out-of-order callbacks change nothing and signal nothing. Nothing here logs the code or the
destination.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeAlias
from urllib.parse import parse_qsl

import asyncpg
from fastapi import APIRouter, Request, Response
from twilio.request_validator import RequestValidator

from domain.attempt import DeliveryStatusEvent
from domain.channels import Channel
from infra.settings import Settings

log = logging.getLogger(__name__)

STATUS_PATH = "/webhooks/twilio/status"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

# (workflow_id, run_id, event) -> None. Should return normally when the run has already closed.
SignalAttempt = Callable[[str, str, DeliveryStatusEvent], Awaitable[None]]
PoolSource: TypeAlias = asyncpg.Pool | Callable[[], asyncpg.Pool]

# Twilio's message statuses in the order they can happen; a callback never moves a message back.
_RANK = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "receiving": 3,
    "received": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "canceled": 4,
    "partially_delivered": 4,
    "read": 5,
}
SIGNALLED_STATUSES = frozenset({"delivered", "undelivered", "failed"})
SIGNAL_TIMEOUT = 10.0


def _twiml() -> Response:
    return Response(content=EMPTY_TWIML, media_type="application/xml")


def _moves_forward(old: str | None, new: str) -> bool:
    if old is None:
        return True
    if old == new:
        return False
    return _RANK.get(new, 0) > _RANK.get(old, 0)


async def _find(db: asyncpg.Pool, sid: str, *, grace: float) -> asyncpg.Record | None:
    """The challenge sent as `sid`. A fast final callback can beat the send activity's write of
    the message SID, so a final status waits up to `grace` seconds for it."""
    deadline = time.monotonic() + grace
    while True:
        row: asyncpg.Record | None = await db.fetchrow(
            "SELECT run_id, send_seq, workflow_id, channel, delivery_status"
            " FROM otp_challenges WHERE provider_message_id = $1",
            sid,
        )
        if row is not None or time.monotonic() >= deadline:
            return row
        await asyncio.sleep(0.2)


def twilio_status_router(
    settings: Settings,
    pool: PoolSource,
    signal_attempt: SignalAttempt,
    *,
    lookup_grace_seconds: float = 3.0,
) -> APIRouter:
    """The router to include in the portal app. `pool` may be a pool or a zero-argument callable
    returning one (for apps that open the pool in their lifespan)."""
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    validator = RequestValidator(token) if token else None
    public_url = settings.twilio_status_callback_url or None
    router = APIRouter()

    def get_pool() -> asyncpg.Pool:
        return pool if isinstance(pool, asyncpg.Pool) else pool()

    @router.post(STATUS_PATH, include_in_schema=False)
    async def twilio_status(request: Request) -> Response:
        raw = (await request.body()).decode("utf-8", "replace")
        params = dict(parse_qsl(raw, keep_blank_values=True))
        signature = request.headers.get("X-Twilio-Signature", "")
        url = public_url or str(request.url)
        if validator is None or not signature or not validator.validate(url, params, signature):
            log.warning("twilio status callback refused: bad or missing signature")
            return Response(status_code=403)

        sid = params.get("MessageSid") or params.get("SmsSid") or ""
        status = (params.get("MessageStatus") or params.get("SmsStatus") or "").lower()
        provider_code = params.get("ErrorCode") or None
        if not sid or not status:
            return _twiml()

        db = get_pool()
        for _ in range(5):
            row = await _find(db, sid, grace=lookup_grace_seconds if status in SIGNALLED_STATUSES else 0)
            if row is None:
                log.info("twilio status %s for unknown message %s", status, sid)
                return _twiml()
            previous = row["delivery_status"]
            if not _moves_forward(previous, status):
                return _twiml()
            # Claim the change: of two concurrent callbacks only one moves the row (and signals).
            claimed = await db.fetchval(
                "UPDATE otp_challenges SET delivery_status = $3"
                " WHERE run_id = $1 AND send_seq = $2 AND delivery_status IS NOT DISTINCT FROM $4"
                " RETURNING true",
                row["run_id"],
                row["send_seq"],
                status,
                previous,
            )
            if claimed:
                break
        else:
            return Response(status_code=503)

        log.info(
            "twilio status %s for %s (workflow %s, send %s, error code %s)",
            status,
            sid,
            row["workflow_id"],
            row["send_seq"],
            provider_code,
        )
        if status in SIGNALLED_STATUSES:
            event = DeliveryStatusEvent(
                send_seq=row["send_seq"],
                channel=Channel(row["channel"]),
                status=status,
                provider_code=provider_code,
            )
            try:
                await asyncio.wait_for(
                    signal_attempt(row["workflow_id"], row["run_id"], event), SIGNAL_TIMEOUT
                )
            except Exception:
                log.exception("twilio status %s for %s: signalling the attempt failed", status, sid)
                # Undo the claim so Twilio's retry (or a later callback) can signal again.
                await db.execute(
                    "UPDATE otp_challenges SET delivery_status = $4"
                    " WHERE run_id = $1 AND send_seq = $2 AND delivery_status = $3",
                    row["run_id"],
                    row["send_seq"],
                    status,
                    previous,
                )
                return Response(status_code=503)
        return _twiml()

    return router
