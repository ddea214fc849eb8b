"""Pay-link tokens: bound to one invoice, expiring, and impossible to forge or re-point."""

import base64
import time

import pytest

from infra.pay_links import (
    PayLinkExpired,
    PayLinkForged,
    PayLinkSigner,
    bearer_token,
    make_pay_link,
    token_matches,
)
from tests.support import test_settings as make_settings

KEY = "a-signing-key-for-tests-only"


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def test_round_trip_carries_invoice_and_expiry() -> None:
    signer = PayLinkSigner(KEY, ttl_seconds=600)
    now = time.time()
    claims = signer.verify(signer.issue("INV-1001", now=now))
    assert claims.invoice_id == "INV-1001"
    assert abs(claims.expires_at.timestamp() - (int(now) + 600)) < 1


def test_token_is_url_safe_and_unique_per_issue() -> None:
    signer = PayLinkSigner(KEY, ttl_seconds=600)
    a, b = signer.issue("INV/odd id ü"), signer.issue("INV/odd id ü")
    assert a != b  # a fresh nonce each time
    assert all(ch.isalnum() or ch in "-_." for ch in a)
    assert signer.verify(a).invoice_id == "INV/odd id ü"


def test_expired_is_distinct_from_forged() -> None:
    signer = PayLinkSigner(KEY, ttl_seconds=60)
    token = signer.issue("INV-1001", now=time.time() - 120)
    with pytest.raises(PayLinkExpired) as info:
        signer.verify(token)
    assert info.value.invoice_id == "INV-1001"


def test_swapping_the_invoice_id_breaks_the_signature() -> None:
    signer = PayLinkSigner(KEY, ttl_seconds=600)
    parts = signer.issue("INV-1001").split(".")
    parts[1] = _b64("INV-1003")
    with pytest.raises(PayLinkForged):
        signer.verify(".".join(parts))


def test_extending_the_expiry_is_forgery_not_expiry() -> None:
    signer = PayLinkSigner(KEY, ttl_seconds=60)
    parts = signer.issue("INV-1001", now=time.time() - 120).split(".")
    parts[2] = str(int(time.time()) + 10_000)
    with pytest.raises(PayLinkForged):
        signer.verify(".".join(parts))


def test_another_key_and_garbage_are_forged() -> None:
    token = PayLinkSigner("another-key-entirely-123", ttl_seconds=600).issue("INV-1001")
    signer = PayLinkSigner(KEY, ttl_seconds=600)
    for bad in [
        token,
        "",
        "abc",
        "p1.x.y.z.w",
        "p2" + token[2:],
        token + "A",
        token[:-3],
        "é" * 20,
        "x" * 600,
    ]:
        with pytest.raises(PayLinkForged):
            signer.verify(bad)


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError):
        PayLinkSigner("short", ttl_seconds=60)


def test_make_pay_link_uses_portal_base_url() -> None:
    settings = make_settings(portal_base_url="https://pay.example.com/")
    url = make_pay_link(settings, "INV-1002")
    assert url.startswith("https://pay.example.com/pay/p1.")
    signer = PayLinkSigner(settings.secret("link_signing_key"), ttl_seconds=settings.link_ttl_seconds)
    assert signer.verify(url.rsplit("/", 1)[1]).invoice_id == "INV-1002"


def test_bearer_and_staff_token_helpers() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer   abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None
    assert token_matches("s3cret", "s3cret")
    assert not token_matches("s3cret", "s3cre")
    assert not token_matches(None, "s3cret")
    assert not token_matches("", "")
