"""Signed processor webhooks, Stripe's scheme (SPEC §9).

Header `PortalPay-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` under
PROCESSOR_WEBHOOK_SECRET. The receiver checks the raw bytes before parsing anything, compares in
constant time, and refuses a timestamp more than `tolerance` seconds away (a replayed old event).
Several `v1=` entries may be present during a secret rotation; one match is enough.
"""

import hashlib
import hmac
import time

SIGNATURE_HEADER = "PortalPay-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureError(Exception):
    pass


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_mac(secret, t, body)}"


def verify(
    secret: str,
    header: str | None,
    body: bytes,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> int:
    """Returns the signed timestamp, or raises `SignatureError`."""
    if not header or len(header) > 1024:
        raise SignatureError("missing signature")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t" and value.isascii() and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError("malformed signature header")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError("timestamp outside the tolerance")
    expected = _mac(secret, timestamp, body)
    if not any(hmac.compare_digest(expected.encode(), c.encode("ascii", "replace")) for c in candidates):
        raise SignatureError("signature mismatch")
    return timestamp
