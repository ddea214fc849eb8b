"""One try of one webhook (SPEC §12): check the address, sign, POST, judge, record.

Everything a receiver can do wrong (refuse, hang, answer 500, redirect, reset the connection,
resolve to a forbidden address) comes back as a failed try, never as an exception: the delivery
workflow must not fail because of a receiver. The activity raises only when the database or the
sealed secret cannot be read, and then it is retried.

A retried activity (a killed worker) first looks for the try it already recorded; a try whose
worker died between the POST and the record is POSTed again, with the same `webhook-id`, which
receivers de-duplicate on (Standard Webhooks).
"""

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections.abc import Mapping

import asyncpg
import httpx
from temporalio import activity

from domain.channels import Channel
from domain.webhooks import (
    TryOutcome,
    WebhookTryRequest,
    WebhookTryResult,
    judge_response,
)
from infra.providers.delivery.base import CodeSender, DeliveryError, OutboundMessage
from infra.stores import webhooks as store
from infra.tls import verifying_context
from infra.webhook_address import Resolver, WebhookUrlRefused, check_webhook_url, system_resolver
from infra.webhook_secrets import SecretBox, signature_header
from infra.webhook_settings import WebhookConfig
from workflows.webhook_delivery import DELIVER_WEBHOOK

log = logging.getLogger(__name__)
USER_AGENT = "PortalPay-Webhooks/1"


def event_body(event: Mapping[str, object]) -> bytes:
    return json.dumps(event, separators=(",", ":"), sort_keys=True).encode()


class WebhookDeliveryActivities:
    def __init__(
        self,
        pool: asyncpg.Pool,
        box: SecretBox,
        config: WebhookConfig,
        senders: Mapping[Channel, CodeSender],
        *,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._pool = pool
        self._box = box
        self._config = config
        self._senders = senders
        self._resolver = resolver

    @activity.defn(name=DELIVER_WEBHOOK)
    async def deliver_webhook(self, request: WebhookTryRequest) -> WebhookTryResult:
        info = activity.info()
        try_key = f"{info.workflow_id}/{info.workflow_run_id}/{request.attempt}"
        done = await store.recorded_try(self._pool, try_key)
        if done is not None:
            return self._result(request.attempt, done.outcome, done.status_code, done.error)
        endpoint = await store.get_endpoint(self._pool, request.endpoint_id)
        if endpoint is None or not endpoint.enabled:
            # Deleted or disabled since: nothing is sent, nothing recorded, no more tries.
            return WebhookTryResult(outcome=TryOutcome.ENDPOINT_GONE, error="endpoint disabled or deleted")
        event = await store.load_event(self._pool, request.event_id)
        if event is None:
            return WebhookTryResult(outcome=TryOutcome.ENDPOINT_GONE, error="no such event")
        keys = await store.signing_secrets(self._pool, self._box, endpoint.id)

        started = time.monotonic()
        status_code, error = await self._post(endpoint.url, event["id"], event_body(event), keys)
        duration_ms = int((time.monotonic() - started) * 1000)
        outcome = judge_response(status_code)
        async with self._pool.acquire() as conn:
            failing_since = await store.record_try(
                conn,
                try_key=try_key,
                endpoint_id=endpoint.id,
                event_id=request.event_id,
                attempt=request.attempt,
                outcome=outcome,
                status_code=status_code,
                duration_ms=duration_ms,
                error=error,
            )
        if outcome is TryOutcome.ENDPOINT_GONE:
            await store.disable_endpoint(self._pool, endpoint.id, "the receiver answered 410 Gone")
        elif failing_since is not None:
            failing_for = await self._pool.fetchval("SELECT now() - $1::timestamptz", failing_since)
            if failing_for >= self._config.disable_after:
                reason = f"every try failed for {failing_for.days} day(s)"
                if await store.disable_endpoint(self._pool, endpoint.id, reason):
                    await self._tell_staff(endpoint.id, endpoint.url, reason)
                outcome = TryOutcome.ENDPOINT_GONE
        return self._result(request.attempt, outcome, status_code, error)

    def _result(
        self, attempt: int, outcome: TryOutcome, status_code: int | None, error: str | None
    ) -> WebhookTryResult:
        retry_after = self._config.retry_after(attempt) if outcome is TryOutcome.FAILED else None
        return WebhookTryResult(
            outcome=outcome, status_code=status_code, error=error, retry_after_seconds=retry_after
        )

    def _tls(self) -> ssl.SSLContext | bool:
        """The configured verification; the default one shared, not rebuilt for every try."""
        return verifying_context() if self._config.tls_verify is True else self._config.tls_verify

    async def _post(
        self, url: str, webhook_id: str, body: bytes, keys: list[str]
    ) -> tuple[int | None, str | None]:
        """(status code, error) of one POST to the address just checked; never raises for the receiver."""
        try:
            target = await check_webhook_url(url, self._config.address_rules, self._resolver)
        except WebhookUrlRefused as refused:
            return None, f"address refused: {refused}"
        timestamp = int(time.time())
        headers = {
            "host": target.host_header,
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(keys, webhook_id, timestamp, body),
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        deadline = self._config.try_timeout_seconds
        heartbeat = asyncio.create_task(_heartbeat_every(2.0))
        try:
            # One deadline for the whole try (connect, send, the status line), and a client per
            # try: it connects only to the checked address, follows no redirect and keeps nothing
            # (cookies, pooled connections) from one receiver to the next. The response body is
            # never read: it is not ours to keep, and a slow or endless one cannot hold the try.
            async with (
                asyncio.timeout(deadline),
                httpx.AsyncClient(follow_redirects=False, trust_env=False, verify=self._tls()) as client,
                client.stream(
                    "POST",
                    target.connect_url,
                    content=body,
                    headers=headers,
                    extensions=extensions,
                    timeout=httpx.Timeout(deadline),
                ) as response,
            ):
                status_code = response.status_code
        except (TimeoutError, httpx.TimeoutException):
            return None, f"no answer within {deadline:g} s"
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: could not complete the request"
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        if 300 <= status_code < 400:
            return status_code, "redirect not followed"
        if not 200 <= status_code < 300:
            return status_code, f"HTTP {status_code}"
        return status_code, None

    async def _tell_staff(self, endpoint_id: str, url: str, reason: str) -> None:
        sender = self._senders.get(Channel.EMAIL)
        if sender is None or not self._config.staff_notify_email:
            log.warning(
                "webhook endpoint %s disabled (%s); no STAFF_NOTIFY_EMAIL to tell", endpoint_id, reason
            )
            return
        text = (
            f"Webhook endpoint {endpoint_id} ({url}) has been disabled: {reason}. No more events are sent"
            " to it. Fix the receiver, then create a new endpoint and redeliver the events it missed."
        )
        try:
            await sender.send(
                OutboundMessage(
                    channel=Channel.EMAIL,
                    to=self._config.staff_notify_email,
                    subject=f"Webhook endpoint {endpoint_id} disabled",
                    text=text,
                    html=None,
                    idempotency_key=f"webhook-endpoint-disabled/{endpoint_id}",
                )
            )
        except DeliveryError:
            log.warning("could not email staff that webhook endpoint %s was disabled", endpoint_id)


async def _heartbeat_every(seconds: float) -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(seconds)
