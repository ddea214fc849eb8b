"""Email codes through SendGrid's v3 Mail Send, with the official `sendgrid` SDK.

The SDK is synchronous (urllib underneath) and never retries on its own; each send runs in a
worker thread with a socket timeout, and an outer deadline in case the thread is stuck elsewhere.
Failures are classified for the activity: transient (5xx, 429, 408, timeouts, refused or dropped
connections) and permanent (other 4xx: a bad address, bad credentials, an unverified sender).

SendGrid accepts mail for suppressed (unsubscribed, bounced) recipients with a 202 and drops it
later; that only shows through its Event Webhook, not here.
"""

import asyncio
import http.client
import json
import logging
from typing import Any

import python_http_client
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import (
    Category,
    ClickTracking,
    CustomArg,
    From,
    Mail,
    OpenTracking,
    To,
    TrackingSettings,
)

from domain.channels import Channel
from domain.masking import mask_email
from infra.providers.delivery._redact import redact
from infra.providers.delivery.base import (
    DeliveryReceipt,
    OutboundMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
)

log = logging.getLogger(__name__)

DEFAULT_HOST = "https://api.sendgrid.com"
DEFAULT_TIMEOUT_SECONDS = 10.0
# python_http_client logs the whole request body (the code and the address) at DEBUG.
_SDK_LOGGER = "python_http_client.client"
_TRANSIENT_STATUSES = frozenset({408, 429})


class SendGridEmailSender:
    """A `CodeSender` for `Channel.EMAIL`."""

    def __init__(
        self,
        *,
        api_key: str,
        from_email: str,
        host: str | None = None,
        template_id: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        name: str = "sendgrid",
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.name = name
        self._from = From(from_email)  # "Name <addr>" or a bare address
        self._template_id = template_id or None
        self._timeout = timeout
        self._client = SendGridAPIClient(api_key=api_key, host=(host or DEFAULT_HOST).rstrip("/"))
        # The timeout reaches every request the SDK builds from this client.
        self._client.client.timeout = timeout
        _mute_sdk_debug()

    def build_mail(self, message: OutboundMessage) -> dict[str, Any]:
        """The v3 request body: plain text and HTML, or a dynamic template with its data."""
        mail = Mail(
            from_email=self._from,
            to_emails=To(message.to),
            subject=message.subject or None,
            plain_text_content=message.text,
            html_content=message.html,
        )
        if self._template_id:
            mail.template_id = self._template_id
            mail.dynamic_template_data = dict(message.template_data)
        # Per personalization: the top-level custom_args is a string in SendGrid's own document.
        mail.custom_arg = CustomArg("idempotency_key", message.idempotency_key, p=0)
        mail.category = Category("otp")
        tracking = TrackingSettings()
        tracking.click_tracking = ClickTracking(False, False)
        tracking.open_tracking = OpenTracking(False)
        mail.tracking_settings = tracking
        body: dict[str, Any] = mail.get()
        return body

    def _post(self, body: dict[str, Any]) -> python_http_client.client.Response:
        return self._client.send(body)

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        if message.channel is not Channel.EMAIL:
            raise PermanentDeliveryError(
                f"{self.name} sends email only", provider=self.name, provider_code="wrong_channel"
            )
        dest = mask_email(message.to)
        body = self.build_mail(message)
        try:
            # The socket timeout bounds each read; the outer deadline bounds the whole call.
            response = await asyncio.wait_for(asyncio.to_thread(self._post, body), self._timeout * 2 + 1)
        except HTTPError as exc:
            raise self._classify_http(exc, dest) from None
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            # socket.timeout is TimeoutError; urllib.error.URLError and ConnectionError are OSErrors;
            # a connection closed before the status line is http.client.RemoteDisconnected.
            kind = "timeout" if _is_timeout(exc) else "connection"
            log.warning("sendgrid: %s sending to %s (%s)", kind, dest, type(exc).__name__)
            raise TransientDeliveryError(
                f"sendgrid: {kind} ({type(exc).__name__})", provider=self.name, provider_code=kind
            ) from None
        message_id = response.headers.get("X-Message-Id") if response.headers is not None else None
        log.info("sendgrid: accepted email to %s (status %s, id %s)", dest, response.status_code, message_id)
        return DeliveryReceipt(provider=self.name, message_id=message_id)

    def _classify_http(self, exc: HTTPError, dest: str) -> Exception:
        status = int(exc.status_code)
        field, detail = _first_error(exc.body)
        code = f"{status}:{field}" if field and status < 500 else str(status)
        text = f"sendgrid: HTTP {status}" + (f" {detail}" if detail else "")
        if status >= 500 or status in _TRANSIENT_STATUSES:
            log.warning("sendgrid: transient HTTP %s sending to %s", status, dest)
            return TransientDeliveryError(text, provider=self.name, provider_code=str(status))
        log.warning("sendgrid: permanent HTTP %s sending to %s (%s)", status, dest, code)
        return PermanentDeliveryError(text, provider=self.name, provider_code=code)

    async def aclose(self) -> None:
        return None


class _NoDebug(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


_NO_DEBUG = _NoDebug()


def _mute_sdk_debug() -> None:
    """Whatever level logging is configured at, the SDK's DEBUG dump of the body never gets out."""
    sdk_log = logging.getLogger(_SDK_LOGGER)
    if _NO_DEBUG not in sdk_log.filters:
        sdk_log.addFilter(_NO_DEBUG)


def _first_error(body: bytes | str | None) -> tuple[str | None, str]:
    """`({"errors": [{"message", "field"}]})` -> (field, redacted message)."""
    if not body:
        return None, ""
    try:
        raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        payload = json.loads(raw)
        first = payload["errors"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        return None, ""
    if not isinstance(first, dict):
        return None, ""
    field = first.get("field")
    field = field if isinstance(field, str) and field and field != "null" else None
    return field, redact(first.get("message"))


def _is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError):
        return True
    reason = getattr(exc, "reason", None)  # urllib.error.URLError(reason=socket.timeout(...))
    return isinstance(reason, TimeoutError)
