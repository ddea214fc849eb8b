"""POST /webhooks/twilio/status: signature checked by the SDK's RequestValidator, then a signal."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from twilio.request_validator import RequestValidator

from domain.attempt import DeliveryStatusEvent
from domain.channels import Channel
from starters.portal.webhooks.twilio import STATUS_PATH, twilio_status_router
from tests import support
from tests.support import create_invoice

AUTH_TOKEN = "webhook-test-token"
ACCOUNT_SID = "AC" + "c" * 32
PUBLIC_URL = "https://portal.example.com/webhooks/twilio/status"


@dataclass
class Recorder:
    calls: list[tuple[str, str, DeliveryStatusEvent]] = field(default_factory=list)
    fail: bool = False

    async def __call__(self, workflow_id: str, run_id: str, event: DeliveryStatusEvent) -> None:
        if self.fail:
            raise RuntimeError("temporal unreachable")
        self.calls.append((workflow_id, run_id, event))


@dataclass
class Challenge:
    workflow_id: str
    run_id: str
    send_seq: int
    sid: str


async def make_challenge(pool: asyncpg.Pool) -> Challenge:
    inv = await create_invoice(pool)
    run_id = str(uuid.uuid4())
    sid = "SM" + uuid.uuid4().hex
    workflow_id = f"pay-invoice-{inv.invoice_id}"
    await pool.execute(
        "INSERT INTO otp_challenges (run_id, send_seq, workflow_id, invoice_id, contact_id, channel,"
        " destination_masked, code_digest, expires_at, sent_at, provider, provider_message_id)"
        " VALUES ($1, 2, $2, $3, $4, 'sms', '•••-•••-0199', $5, $6, now(), 'twilio', $7)",
        run_id,
        workflow_id,
        inv.invoice_id,
        inv.payer_contact_id,
        b"\x00" * 32,
        datetime.now(UTC) + timedelta(minutes=10),
        sid,
    )
    return Challenge(workflow_id, run_id, 2, sid)


def callback_form(sid: str, status: str, error_code: str | None = None) -> dict[str, str]:
    form = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "From": "+15005550006",
        "MessageSid": sid,
        "MessageStatus": status,
        "SmsSid": sid,
        "SmsStatus": status,
        "To": "+15555550199",
    }
    if error_code:
        form["ErrorCode"] = error_code
    return form


def signed(url: str, form: dict[str, str], token: str = AUTH_TOKEN) -> dict[str, str]:
    return {
        "X-Twilio-Signature": RequestValidator(token).compute_signature(url, form),
        "Content-Type": "application/x-www-form-urlencoded",
    }


@dataclass
class Hook:
    http: httpx.AsyncClient
    signal: Recorder
    url: str

    async def post(self, form: dict[str, str], headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.http.post(
            STATUS_PATH,
            content=urlencode(form),
            headers=headers if headers is not None else signed(self.url, form),
        )


async def _hook(
    db_pool: asyncpg.Pool, *, grace: float = 0.3, pool_source: Any = None, **overrides: Any
) -> AsyncIterator[Hook]:
    settings = support.test_settings(twilio_auth_token=AUTH_TOKEN, **overrides)
    recorder = Recorder()
    app = FastAPI()
    app.include_router(
        twilio_status_router(settings, pool_source or db_pool, recorder, lookup_grace_seconds=grace)
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield Hook(http, recorder, settings.twilio_status_callback_url or f"http://testserver{STATUS_PATH}")


@pytest.fixture
async def hook(db_pool: asyncpg.Pool) -> AsyncIterator[Hook]:
    async for h in _hook(db_pool, twilio_status_callback_url=PUBLIC_URL):
        yield h


async def delivery_status(pool: asyncpg.Pool, c: Challenge) -> str | None:
    value: str | None = await pool.fetchval(
        "SELECT delivery_status FROM otp_challenges WHERE run_id = $1 AND send_seq = $2", c.run_id, c.send_seq
    )
    return value


async def test_undelivered_signals_the_attempt(hook: Hook, db_pool: asyncpg.Pool) -> None:
    c = await make_challenge(db_pool)
    r = await hook.post(callback_form(c.sid, "undelivered", "30003"))
    assert r.status_code == 200
    assert "<Response" in r.text
    assert hook.signal.calls == [
        (
            c.workflow_id,
            c.run_id,
            DeliveryStatusEvent(send_seq=2, channel=Channel.SMS, status="undelivered", provider_code="30003"),
        )
    ]
    assert await delivery_status(db_pool, c) == "undelivered"

    # Twilio repeats itself; a late "sent" arrives after the final word: nothing more happens.
    assert (await hook.post(callback_form(c.sid, "undelivered", "30003"))).status_code == 200
    assert (await hook.post(callback_form(c.sid, "sent"))).status_code == 200
    assert len(hook.signal.calls) == 1
    assert await delivery_status(db_pool, c) == "undelivered"


async def test_progress_is_recorded_and_delivered_signalled(hook: Hook, db_pool: asyncpg.Pool) -> None:
    c = await make_challenge(db_pool)
    assert (await hook.post(callback_form(c.sid, "sent"))).status_code == 200
    assert hook.signal.calls == []
    assert await delivery_status(db_pool, c) == "sent"
    assert (await hook.post(callback_form(c.sid, "delivered"))).status_code == 200
    assert [call[2].status for call in hook.signal.calls] == ["delivered"]
    assert hook.signal.calls[0][2].provider_code is None
    assert await delivery_status(db_pool, c) == "delivered"


async def test_failed_status_signals(hook: Hook, db_pool: asyncpg.Pool) -> None:
    c = await make_challenge(db_pool)
    assert (await hook.post(callback_form(c.sid, "failed", "30007"))).status_code == 200
    assert [(e.status, e.provider_code) for _, _, e in hook.signal.calls] == [("failed", "30007")]


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl", "Content-Type": "application/x-www-form-urlencoded"},
        {"Content-Type": "application/x-www-form-urlencoded"},
    ],
    ids=["bad-signature", "no-signature"],
)
async def test_bad_signature_is_refused(hook: Hook, db_pool: asyncpg.Pool, headers: dict[str, str]) -> None:
    c = await make_challenge(db_pool)
    r = await hook.post(callback_form(c.sid, "undelivered", "30003"), headers=headers)
    assert r.status_code == 403
    assert hook.signal.calls == []
    assert await delivery_status(db_pool, c) is None


async def test_signature_for_another_token_or_url_is_refused(hook: Hook, db_pool: asyncpg.Pool) -> None:
    c = await make_challenge(db_pool)
    form = callback_form(c.sid, "failed", "30007")
    assert (await hook.post(form, headers=signed(PUBLIC_URL, form, token="other-token"))).status_code == 403
    other_url = "https://evil.example.com/webhooks/twilio/status"
    assert (await hook.post(form, headers=signed(other_url, form))).status_code == 403
    # A signed body whose fields were altered afterwards.
    tampered = dict(form, MessageStatus="delivered")
    assert (await hook.post(tampered, headers=signed(PUBLIC_URL, form))).status_code == 403
    assert hook.signal.calls == []


async def test_request_url_is_used_without_a_public_url(db_pool: asyncpg.Pool) -> None:
    async for h in _hook(db_pool, twilio_status_callback_url=None):
        c = await make_challenge(db_pool)
        assert (await h.post(callback_form(c.sid, "undelivered", "30005"))).status_code == 200
        assert len(h.signal.calls) == 1


async def test_unknown_message_is_acknowledged(hook: Hook) -> None:
    r = await hook.post(callback_form("SM" + uuid.uuid4().hex, "failed", "30007"))
    assert r.status_code == 200
    assert hook.signal.calls == []


async def test_signal_failure_leaves_the_status_for_a_retry(hook: Hook, db_pool: asyncpg.Pool) -> None:
    c = await make_challenge(db_pool)
    hook.signal.fail = True
    assert (await hook.post(callback_form(c.sid, "undelivered", "30003"))).status_code == 503
    assert await delivery_status(db_pool, c) is None
    hook.signal.fail = False
    assert (await hook.post(callback_form(c.sid, "undelivered", "30003"))).status_code == 200
    assert len(hook.signal.calls) == 1
    assert await delivery_status(db_pool, c) == "undelivered"


async def test_without_an_auth_token_every_callback_is_refused(db_pool: asyncpg.Pool) -> None:
    settings = support.test_settings(twilio_auth_token=None)
    recorder = Recorder()
    app = FastAPI()
    app.include_router(twilio_status_router(settings, db_pool, recorder, lookup_grace_seconds=0.3))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        form = callback_form("SM" + "0" * 32, "failed")
        r = await http.post(
            STATUS_PATH, content=urlencode(form), headers=signed(f"http://testserver{STATUS_PATH}", form, "")
        )
        assert r.status_code == 403


class WatchedPool:
    """The pool, telling when the webhook looked for a message SID and found nothing yet."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.lookups = 0
        self.missed = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self._pool.fetchrow(query, *args)
        if "provider_message_id" in query:
            self.lookups += 1
            if row is None:
                self.missed.set()
        return row


async def test_final_status_that_beats_the_send_activity_is_not_lost(db_pool: asyncpg.Pool) -> None:
    c = await make_challenge(db_pool)
    await db_pool.execute(
        "UPDATE otp_challenges SET provider_message_id = NULL WHERE run_id = $1 AND send_seq = $2",
        c.run_id,
        2,
    )
    watched = WatchedPool(db_pool)
    # The grace only bounds the wait; the SID is written as soon as the webhook has missed it once.
    async for hook in _hook(
        db_pool, grace=120, pool_source=lambda: watched, twilio_status_callback_url=PUBLIC_URL
    ):
        callback = asyncio.create_task(hook.post(callback_form(c.sid, "failed", "30006")))
        await asyncio.wait_for(watched.missed.wait(), timeout=60)
        await db_pool.execute(
            "UPDATE otp_challenges SET provider_message_id = $3 WHERE run_id = $1 AND send_seq = $2",
            c.run_id,
            2,
            c.sid,
        )
        r = await asyncio.wait_for(callback, timeout=120)
        assert r.status_code == 200
        assert watched.lookups >= 2  # the first lookup really came before the send activity's write
        assert [e.status for _, _, e in hook.signal.calls] == ["failed"]
        assert await delivery_status(db_pool, c) == "failed"
