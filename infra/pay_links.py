"""Pay Your Invoice links: signed, expiring tokens bound to one invoice, and the staff-token check.

A token is `p1.<invoice id, base64url>.<expiry, unix seconds>.<nonce>.<HMAC-SHA256, base64url>`.
The MAC covers everything before it under `LINK_SIGNING_KEY`, so the invoice id cannot be swapped
and one invoice's link never reaches another invoice's attempt (SPEC §3). Only the MAC makes a
token genuine: expiry is judged after the signature, so a forged token is always "forged", never
"expired", and an attacker learns nothing from editing the expiry.

The nonce starts with the issue time (6 bytes, unix milliseconds) followed by 9 random bytes, so
a link issued before a payer change can be told from one issued after it (SPEC §11 revocation);
the MAC covers it like everything else. Links minted before this format (a 9-byte nonce) carry no
issue time and are judged by expiry minus the link lifetime.
"""

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from infra.settings import Settings

TOKEN_VERSION = "p1"
# Domain separation: the same key must never validate anything that is not a pay link.
_MAC_CONTEXT = b"portalpay/pay-link/v1\x00"
_MAX_TOKEN_LENGTH = 512


class PayLinkError(Exception):
    """The token cannot be used; the message is safe to show the customer."""


class PayLinkForged(PayLinkError):
    """Malformed, or the signature does not match: not a link we made."""


class PayLinkExpired(PayLinkError):
    """A genuine link past its expiry: staff must send a new one."""

    def __init__(self, message: str, *, invoice_id: str, expired_at: datetime) -> None:
        super().__init__(message)
        self.invoice_id = invoice_id
        self.expired_at = expired_at


_ISSUED_AT_BYTES = 6
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_RANDOM_BYTES = 9


@dataclass(frozen=True)
class PayLinkClaims:
    invoice_id: str
    expires_at: datetime
    nonce: str
    issued_at: datetime | None = None  # None for links minted before the nonce carried it

    def issued_at_or_estimate(self, ttl_seconds: int) -> datetime:
        """When the link was made: from the token, else its expiry minus the link lifetime."""
        if self.issued_at is not None:
            return self.issued_at
        return datetime.fromtimestamp(self.expires_at.timestamp() - ttl_seconds, tz=UTC)


def _nonce(issued: float) -> str:
    millis = max(0, int(issued * 1000))
    return _b64e(millis.to_bytes(_ISSUED_AT_BYTES, "big") + secrets.token_bytes(_RANDOM_BYTES))


def _issued_at(nonce: str) -> datetime | None:
    try:
        raw = _b64d(nonce)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != _ISSUED_AT_BYTES + _RANDOM_BYTES:
        return None
    return datetime.fromtimestamp(int.from_bytes(raw[:_ISSUED_AT_BYTES], "big") / 1000, tz=UTC)


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    """Strict unpadded base64url: exactly the text `_b64e` writes, or ValueError. The lenient
    decoder skipped characters outside the alphabet and accepted padding, so `!!` inserted in the
    MAC or `==` appended still authenticated: many spellings of one link (issue 21, finding 5)."""
    if not _B64URL.fullmatch(text):
        raise ValueError("not unpadded base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64e(raw) != text:  # unused trailing bits set: another spelling of the same bytes
        raise ValueError("not the canonical spelling")
    return raw


class PayLinkSigner:
    def __init__(self, key: str | bytes, *, ttl_seconds: int) -> None:
        raw = key.encode() if isinstance(key, str) else key
        if len(raw) < 16:
            raise ValueError("LINK_SIGNING_KEY must be at least 16 bytes")
        self._key = raw
        self._ttl = ttl_seconds

    def _mac(self, signed_part: str) -> bytes:
        return hmac.new(self._key, _MAC_CONTEXT + signed_part.encode("ascii"), hashlib.sha256).digest()

    def issue(self, invoice_id: str, *, ttl_seconds: int | None = None, now: float | None = None) -> str:
        if not invoice_id:
            raise ValueError("invoice id is required")
        issued = time.time() if now is None else now
        expires = int(issued) + (self._ttl if ttl_seconds is None else ttl_seconds)
        signed_part = ".".join((TOKEN_VERSION, _b64e(invoice_id.encode()), str(expires), _nonce(issued)))
        return f"{signed_part}.{_b64e(self._mac(signed_part))}"

    def verify(self, token: str, *, now: float | None = None) -> PayLinkClaims:
        if not token or len(token) > _MAX_TOKEN_LENGTH or not token.isascii():
            raise PayLinkForged("This payment link is not valid.")
        parts = token.split(".")
        if len(parts) != 5 or parts[0] != TOKEN_VERSION:
            raise PayLinkForged("This payment link is not valid.")
        signed_part, mac_text = token.rsplit(".", 1)
        try:
            given_mac = _b64d(mac_text)
        except (binascii.Error, ValueError):
            raise PayLinkForged("This payment link is not valid.") from None
        if not hmac.compare_digest(given_mac, self._mac(signed_part)):
            raise PayLinkForged("This payment link is not valid.")
        _, invoice_b64, expires_text, nonce = parts[:4]
        try:
            invoice_id = _b64d(invoice_b64).decode("utf-8")
            expires = int(expires_text)
        except (binascii.Error, ValueError):
            # Only reachable with a valid MAC over a malformed body, i.e. never for our own tokens.
            raise PayLinkForged("This payment link is not valid.") from None
        expires_at = datetime.fromtimestamp(expires, tz=UTC)
        if (time.time() if now is None else now) >= expires:
            raise PayLinkExpired(
                "This payment link has expired. Ask for a new one.",
                invoice_id=invoice_id,
                expired_at=expires_at,
            )
        return PayLinkClaims(
            invoice_id=invoice_id, expires_at=expires_at, nonce=nonce, issued_at=_issued_at(nonce)
        )


def signer_from_settings(settings: Settings) -> PayLinkSigner:
    return PayLinkSigner(settings.secret("link_signing_key"), ttl_seconds=settings.link_ttl_seconds)


def pay_link_url(settings: Settings, token: str) -> str:
    return f"{settings.portal_base_url.rstrip('/')}/pay/{token}"


def make_pay_link(settings: Settings, invoice_id: str) -> str:
    """A fresh, working Pay Your Invoice URL (what `portalpay dev` prints for each demo invoice)."""
    return pay_link_url(settings, signer_from_settings(settings).issue(invoice_id))


def bearer_token(authorization: str | None) -> str | None:
    """The credential of an `Authorization: Bearer <token>` header, or None."""
    if not authorization:
        return None
    scheme, _, credential = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return None
    return credential.strip()


def token_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented staff/operator token with the configured one."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())
