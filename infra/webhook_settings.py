"""The webhook settings (SPEC §12), read once into what the delivery and the API use.

`WEBHOOK_DISABLE_AFTER` (5 days), `WEBHOOK_ALLOW_PRIVATE_CIDRS` (none), `WEBHOOK_SECRET_KEYS`
(required in prod, generated in dev) and `WEBHOOK_RETRY_SCHEDULE`, which prod refuses below the
floor SPEC §12 promises (at least 8 retries over at least 24 h, the first within 10 s).
"""

import base64
import ssl
from dataclasses import dataclass, field
from datetime import timedelta

from domain.webhooks import (
    DEFAULT_DISABLE_AFTER,
    DEFAULT_RETRY_DELAYS_SECONDS,
    TRY_TIMEOUT_SECONDS,
    parse_duration,
    parse_retry_schedule,
)
from infra.settings import Settings, SettingsError
from infra.webhook_address import AddressRules
from infra.webhook_secrets import SecretBox


@dataclass(frozen=True)
class WebhookConfig:
    """What a delivery try needs from the worker's settings."""

    address_rules: AddressRules = field(default_factory=lambda: AddressRules(dev=False))
    retry_delays_seconds: tuple[float, ...] = DEFAULT_RETRY_DELAYS_SECONDS
    disable_after: timedelta = DEFAULT_DISABLE_AFTER
    staff_notify_email: str | None = None
    # SPEC §12: a 2xx within 15 s is delivered (shorter only in tests).
    try_timeout_seconds: float = TRY_TIMEOUT_SECONDS
    # What TLS certificates are checked against: the system's CAs (tests pass their own).
    tls_verify: ssl.SSLContext | bool = True

    def retry_after(self, attempt: int) -> float | None:
        """The wait after failed try `attempt` (1-based); None when that was the last."""
        if attempt <= len(self.retry_delays_seconds):
            return self.retry_delays_seconds[attempt - 1]
        return None


def webhook_config(settings: Settings) -> WebhookConfig:
    return WebhookConfig(
        address_rules=address_rules(settings),
        retry_delays_seconds=parse_retry_schedule(settings.webhook_retry_schedule),
        disable_after=parse_duration(settings.webhook_disable_after),
        staff_notify_email=settings.staff_notify_email,
    )


def address_rules(settings: Settings) -> AddressRules:
    return AddressRules(dev=settings.is_dev, allowed_networks=settings.webhook_allowed_networks)


def secret_box(settings: Settings) -> SecretBox:
    ring: list[tuple[str, bytes]] = []
    for item in settings.secret("webhook_secret_keys").split(","):
        kid, sep, b64 = item.strip().partition(":")
        try:
            key = base64.b64decode(b64, validate=True) if sep and kid else b""
        except ValueError:
            key = b""
        if len(key) != 32:
            raise SettingsError("WEBHOOK_SECRET_KEYS must look like 'kid:base64(32 bytes)[,kid2:…]'")
        ring.append((kid, key))
    return SecretBox(ring)
