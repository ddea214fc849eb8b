"""The provider interface every code sender implements, and the failure classes the activity maps.

A sender raises `TransientDeliveryError` for what a retry may fix (5xx, 429, timeouts, dropped
connections) and `PermanentDeliveryError` for what it cannot (bad destination, bad credentials,
unsubscribed). The activity turns the latter into a non-retryable failure so the workflow marks
the channel failed and offers the other one.
"""

from dataclasses import dataclass, field
from typing import Protocol

from domain.channels import Channel


@dataclass(frozen=True)
class OutboundMessage:
    """Every message PortalPay sends, whatever it carries: a one-time code, a pay link, a payer-change
    notice, a notice that a payment did not go through. Its words come from `messages.py`."""

    channel: Channel
    to: str  # plaintext destination, read from the payer contact inside the activity; never logged
    subject: str
    text: str
    html: str | None
    # Stable per (attempt, send): lets a provider or our own guard refuse a duplicate send.
    idempotency_key: str
    # Values a template may use (code, expiry minutes, invoice number, company name, url).
    template_data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeliveryReceipt:
    provider: str
    message_id: str | None


class DeliveryError(Exception):
    def __init__(self, message: str, *, provider: str, provider_code: str | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.provider_code = provider_code


class TransientDeliveryError(DeliveryError):
    """Retry with backoff."""


class PermanentDeliveryError(DeliveryError):
    """Do not retry; the channel is failed for this attempt."""


class CodeSender(Protocol):
    """Sends one message. Must not log `message.to` in full nor the code."""

    name: str

    async def send(self, message: OutboundMessage) -> DeliveryReceipt: ...

    async def aclose(self) -> None: ...
