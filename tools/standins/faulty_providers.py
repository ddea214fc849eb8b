"""Provider faults for the campaign: SendGrid and Twilio stand-ins on 127.0.0.1 that misbehave on purpose.

The working channel answers 5xx, 429 or hangs past the SDK's timeout on a share of sends; the
broken channel refuses every send permanently (an invalid number, Twilio 21211; or a forbidden
sender, SendGrid 403). Every message the provider *accepted* is kept by the message id the provider
answered with (SendGrid's X-Message-Id, Twilio's SID), with its recipient and code: never by its
body, since two messages with different codes for one send must stay two. The campaign ties each
to the send it came from (`tools.chaos.checks.check_codes`). The stand-ins themselves are
`tools/standins/providers.py`.
"""

import json
import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from domain.otp_code import find_code
from tools.standins.providers import (
    Behaviour,
    Captured,
    Hang,
    Reply,
    SendGridStandIn,
    TwilioStandIn,
    twilio_error,
)

# Past the senders' 10 s socket timeout, so the SDK gives up and the activity retries.
HANG_SECONDS = 12.0


@dataclass(frozen=True)
class Delivered:
    """One message a provider accepted."""

    at: float
    provider: str
    message_id: str
    recipient: str
    code: str
    idempotency_key: str | None  # SendGrid carries the send's key (custom_args); Twilio has none


class AcceptedMessages:
    """Every message a provider accepted, by provider message id; per recipient for the customers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_id: dict[str, Delivered] = {}
        self.by_recipient: dict[str, list[str]] = defaultdict(list)
        self.faults: dict[str, int] = defaultdict(int)

    def accepted(
        self, provider: str, message_id: str, recipient: str, text: str, idempotency_key: str | None = None
    ) -> None:
        code = find_code(text) or ""
        with self._lock:
            if message_id in self.by_id:
                raise AssertionError(f"{provider} answered message id {message_id} twice")
            self.by_id[message_id] = Delivered(
                time.monotonic(), provider, message_id, recipient, code, idempotency_key
            )
            if code:
                self.by_recipient[recipient].append(code)

    def fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def latest_code(self, recipient: str) -> str | None:
        with self._lock:
            codes = self.by_recipient.get(recipient)
            return codes[-1] if codes else None

    def messages(self) -> list[Delivered]:
        with self._lock:
            return sorted(self.by_id.values(), key=lambda d: d.at)


def _fault(rng: random.Random, lock: threading.Lock, rate: float, log: AcceptedMessages) -> Behaviour | None:
    with lock:
        draw, kind = rng.random(), rng.choice(("5xx", "429", "timeout"))
    if draw >= rate:
        return None
    log.fault(kind)
    if kind == "5xx":
        return Reply.json(503, {"errors": [{"message": "service unavailable"}]})
    if kind == "429":
        return Reply.json(429, {"errors": [{"message": "too many requests"}]}, **{"Retry-After": "1"})
    return Hang(HANG_SECONDS)


class FaultySendGrid(SendGridStandIn):
    def __init__(self, log: AcceptedMessages, *, fault_rate: float, broken: bool, seed: int) -> None:
        super().__init__()
        self.log, self.fault_rate, self.broken = log, fault_rate, broken
        self._rng, self._rng_lock = random.Random(seed), threading.Lock()

    def default_reply(self, captured: Captured) -> Behaviour:
        if self.broken:
            self.log.fault("permanent")
            return Reply.json(
                403, {"errors": [{"message": "The from address does not match a verified Sender"}]}
            )
        fault = _fault(self._rng, self._rng_lock, self.fault_rate, self.log)
        if fault is not None:
            return fault
        reply = super().default_reply(captured)
        if isinstance(reply, Reply) and reply.status == 202:
            body: dict[str, Any] = json.loads(captured.body)
            personalization = body["personalizations"][0]
            text = next((c["value"] for c in body.get("content", []) if c["type"] == "text/plain"), "")
            key = personalization.get("custom_args", {}).get("idempotency_key")
            self.log.accepted(
                "sendgrid", reply.headers["X-Message-Id"], personalization["to"][0]["email"], text, key
            )
        return reply


class FaultyTwilio(TwilioStandIn):
    def __init__(self, log: AcceptedMessages, *, fault_rate: float, broken: bool, seed: int) -> None:
        super().__init__()
        self.log, self.fault_rate, self.broken = log, fault_rate, broken
        self._rng, self._rng_lock = random.Random(seed), threading.Lock()

    def default_reply(self, captured: Captured) -> Behaviour:
        if self.broken:
            self.log.fault("permanent")
            return Reply.json(400, twilio_error(21211, "The 'To' number is not a valid phone number.", 400))
        fault = _fault(self._rng, self._rng_lock, self.fault_rate, self.log)
        if fault is not None:
            return fault
        reply = super().default_reply(captured)
        if isinstance(reply, Reply) and reply.status == 201:
            form = dict(parse_qsl(captured.body.decode(), keep_blank_values=True))
            self.log.accepted("twilio", reply.json_body()["sid"], form.get("To", ""), form.get("Body", ""))
        return reply


class ProviderFaults:
    """Both stand-ins, one broken, and the settings that point the worker at them."""

    def __init__(self, *, fault_rate: float, broken_channel: str, seed: int) -> None:
        self.log = AcceptedMessages()
        self.email = FaultySendGrid(
            self.log, fault_rate=fault_rate, broken=broken_channel == "email", seed=seed
        )
        self.sms = FaultyTwilio(
            self.log, fault_rate=fault_rate, broken=broken_channel == "sms", seed=seed + 1
        )
        self.broken_channel = broken_channel

    def start(self) -> "ProviderFaults":
        self.email.start()
        self.sms.start()
        return self

    def stop(self) -> None:
        self.email.stop()
        self.sms.stop()

    def env(self) -> dict[str, str]:
        return {
            "EMAIL_PROVIDER": "sendgrid",
            "SENDGRID_API_KEY": "SG.campaign",
            "SENDGRID_FROM": "codes@portalpay.test",
            "SENDGRID_HOST": self.email.url,
            "SMS_PROVIDER": "twilio",
            "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "TWILIO_AUTH_TOKEN": "campaign",
            "TWILIO_FROM": "+15005550006",
            "TWILIO_BASE_URL": self.sms.url,
        }
