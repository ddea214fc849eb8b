"""Provider faults for the campaign: SendGrid and Twilio stand-ins on 127.0.0.1 that misbehave on purpose.

The working channel answers 5xx, 429 or hangs past the SDK's timeout on a share of sends; the
broken channel refuses every send permanently (an invalid number, Twilio 21211; or a forbidden
sender, SendGrid 403). Every send the provider *accepted* is kept by its idempotency key, so the
campaign can tell whether a customer ever got two codes for one request. The stand-ins themselves
are the provider tests' (`tests/providers/standins.py`).
"""

import json
import random
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from domain.otp_code import find_code

_ROOT = Path(__file__).resolve().parent.parent
if (_ROOT / "tests" / "providers").is_dir() and str(_ROOT) not in sys.path:
    sys.path.append(str(_ROOT))

from tools.standins.providers import (  # noqa: E402
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


class AcceptedMessages:
    """Every message a provider accepted: per recipient (newest last) and per idempotency key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_recipient: dict[str, list[str]] = defaultdict(list)
        self.by_key: dict[str, list[tuple[float, str]]] = defaultdict(list)
        self.faults: dict[str, int] = defaultdict(int)

    def accepted(self, recipient: str, key: str, text: str) -> None:
        code = find_code(text) or ""
        with self._lock:
            self.by_key[key].append((time.monotonic(), code))
            if code:
                self.by_recipient[recipient].append(code)

    def fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def latest_code(self, recipient: str) -> str | None:
        with self._lock:
            codes = self.by_recipient.get(recipient)
            return codes[-1] if codes else None

    def two_codes(self) -> dict[str, list[tuple[float, str]]]:
        """Sends for which the provider delivered more than one distinct code."""
        with self._lock:
            return {k: list(v) for k, v in self.by_key.items() if len({c for _, c in v}) > 1}

    def repeated(self) -> int:
        """Sends delivered more than once with the same code (a duplicate message, not a second code)."""
        with self._lock:
            return sum(1 for v in self.by_key.values() if len(v) > 1 and len({c for _, c in v}) == 1)


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
            key = personalization.get("custom_args", {}).get("idempotency_key", "")
            self.log.accepted(personalization["to"][0]["email"], key, text)
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
            # Twilio has no idempotency key; one message per (recipient, body) is one code sent.
            self.log.accepted(
                form.get("To", ""), f"{form.get('To')}|{form.get('Body')}", form.get("Body", "")
            )
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
