"""Text codes through Twilio's Messages API, with the official `twilio` SDK.

The SDK's `requests` client runs in a worker thread with a socket timeout; its adapters are
mounted with zero retries, so one `send` is at most one POST to Twilio (the activity's retry
policy decides about another). A base URL override (tests, stand-ins, Prism) swaps scheme and
host on every request the SDK makes, keeping the path.

Classification of `TwilioRestException` (`.status`, `.code`): 4xx (21211 invalid `To`, 21614 not a
mobile number, 21610 unsubscribed/STOP, 21408 region not enabled, 20003 bad credentials, ...) is
permanent with `provider_code=str(code)`; 429, 408 and 5xx are transient, as are timeouts and
refused or dropped connections.
"""

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from domain.channels import Channel
from domain.masking import mask_phone
from infra.providers.delivery._redact import redact
from infra.providers.delivery.base import (
    DeliveryReceipt,
    OutboundMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
)

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 10.0
_TRANSIENT_STATUSES = frozenset({408, 429})
# Twilio codes that never get better on retry, whatever HTTP status carried them.
PERMANENT_CODES = frozenset({20003, 20008, 21211, 21408, 21606, 21610, 21612, 21614})
_CONFIG_ERRORS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.URLRequired,
    requests.exceptions.InvalidHeader,
)


class BaseUrlTwilioHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """`TwilioHttpClient` without retries that can send every request to another scheme+host."""

    def __init__(self, *, base_url: str | None = None, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        super().__init__(pool_connections=True, timeout=timeout)
        assert self.session is not None
        for prefix in ("https://", "http://"):
            self.session.mount(prefix, HTTPAdapter(max_retries=0))
        self._base = urlsplit(base_url.rstrip("/")) if base_url else None

    def rewrite(self, url: str) -> str:
        if self._base is None:
            return url
        parts = urlsplit(url)
        path = self._base.path + parts.path
        return urlunsplit((self._base.scheme, self._base.netloc, path, parts.query, parts.fragment))

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        return super().request(
            method,
            self.rewrite(url),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


class TwilioSmsSender:
    """A `CodeSender` for `Channel.SMS`."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        status_callback_url: str | None = None,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        name: str = "twilio",
    ) -> None:
        if not (from_number or messaging_service_sid):
            raise ValueError("Twilio needs a From number or a Messaging Service SID")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.name = name
        self._from = from_number or None
        self._service = messaging_service_sid or None
        self._status_callback = status_callback_url or None
        self._timeout = timeout
        self._http = BaseUrlTwilioHttpClient(base_url=base_url, timeout=timeout)
        self._client = Client(
            username=account_sid, password=auth_token, account_sid=account_sid, http_client=self._http
        )

    def create_params(self, message: OutboundMessage) -> dict[str, Any]:
        params: dict[str, Any] = {"to": message.to, "body": message.text}
        if self._service:
            params["messaging_service_sid"] = self._service
        else:
            params["from_"] = self._from
        if self._status_callback:
            params["status_callback"] = self._status_callback
        return params

    def _create(self, params: dict[str, Any]) -> str | None:
        created = self._client.messages.create(**params)
        sid: str | None = created.sid
        return sid

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        if message.channel is not Channel.SMS:
            raise PermanentDeliveryError(
                f"{self.name} sends SMS only", provider=self.name, provider_code="wrong_channel"
            )
        dest = mask_phone(message.to)
        params = self.create_params(message)
        try:
            sid = await asyncio.wait_for(asyncio.to_thread(self._create, params), self._timeout * 2 + 1)
        except (TwilioRestException, TwilioServiceException) as exc:
            raise self._classify_rest(exc, dest) from None
        except _CONFIG_ERRORS as exc:
            log.error("twilio: bad configuration sending to %s (%s)", dest, type(exc).__name__)
            raise PermanentDeliveryError(
                f"twilio: bad configuration ({type(exc).__name__})",
                provider=self.name,
                provider_code="config",
            ) from None
        except (TimeoutError, requests.exceptions.Timeout) as exc:
            log.warning("twilio: timeout sending to %s (%s)", dest, type(exc).__name__)
            raise TransientDeliveryError(
                f"twilio: timeout ({type(exc).__name__})", provider=self.name, provider_code="timeout"
            ) from None
        except (requests.exceptions.RequestException, OSError) as exc:
            log.warning("twilio: connection failed sending to %s (%s)", dest, type(exc).__name__)
            raise TransientDeliveryError(
                f"twilio: connection ({type(exc).__name__})", provider=self.name, provider_code="connection"
            ) from None
        except TwilioException as exc:
            # Raised before any request: missing credentials and the like.
            raise PermanentDeliveryError(
                f"twilio: {redact(str(exc))}", provider=self.name, provider_code="config"
            ) from None
        log.info("twilio: accepted SMS to %s (sid %s)", dest, sid)
        return DeliveryReceipt(provider=self.name, message_id=sid)

    def _classify_rest(self, exc: TwilioRestException | TwilioServiceException, dest: str) -> Exception:
        status = int(exc.status)
        code = exc.code if exc.code is not None else status
        provider_code = str(code)
        words = (exc.detail or exc.title) if isinstance(exc, TwilioServiceException) else exc.msg
        text = f"twilio: HTTP {status} code {provider_code}"
        detail = redact(words)
        if detail:
            text += f": {detail}"
        transient = (status >= 500 or status in _TRANSIENT_STATUSES) and code not in PERMANENT_CODES
        if transient:
            log.warning("twilio: transient HTTP %s (code %s) sending to %s", status, provider_code, dest)
            return TransientDeliveryError(text, provider=self.name, provider_code=provider_code)
        log.warning("twilio: permanent HTTP %s (code %s) sending to %s", status, provider_code, dest)
        return PermanentDeliveryError(text, provider=self.name, provider_code=provider_code)

    async def aclose(self) -> None:
        session = self._http.session
        if session is not None:
            await asyncio.to_thread(session.close)
