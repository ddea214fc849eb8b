"""Issue 21, finding 5, tried again as described: a pay link whose MAC segment had `!!` inserted or
`==` appended still authenticated; the sealed OTP secret stayed after failed sends; `/docs` loaded
Swagger UI from a CDN on the staff console's origin; no HSTS. (The CORS default list in prod is in
test_prod_policy_refusals.py; account validations and slow guessing in test_link_holder_budgets.py.)"""

import asyncpg
import httpx
import pytest

from domain.channels import Channel
from domain.errors import ErrorType
from infra.pay_links import PayLinkForged, PayLinkSigner
from infra.providers.delivery.base import DeliveryReceipt, OutboundMessage, PermanentDeliveryError
from infra.providers.delivery.console import ConsoleSender
from starters.portal.app import create_app
from starters.workflow_client import AttemptRefused
from tests.conftest import HarnessFactory
from tests.portal.conftest import Portal
from tests.support import Harness, test_settings
from tests.workflow.steps import Attempt, new_invoice

KEY = "link-signing-key-for-these-tests-0123456789"
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _variants(token: str) -> dict[str, str]:
    signed, mac = token.rsplit(".", 1)
    # A 32-byte MAC is 43 characters: the last one carries 2 unused bits; flip one of them.
    sibling = ALPHABET[ALPHABET.index(mac[-1]) ^ 1]
    return {
        "!! inserted": f"{signed}.{mac[:10]}!!{mac[10:]}",
        "== appended": f"{token}==",
        "= appended": f"{token}=",
        "space inserted": f"{signed}.{mac[:10]} {mac[10:]}",
        "standard alphabet": f"{signed}.{mac.replace('-', '+').replace('_', '/')}"
        if ("-" in mac or "_" in mac)
        else "",
        "unused bits set": f"{signed}.{mac[:-1]}{sibling}",
    }


def test_only_the_canonical_spelling_of_a_link_authenticates() -> None:
    signer = PayLinkSigner(KEY, ttl_seconds=600)
    token = signer.issue("INV-STRICT")
    assert signer.verify(token).invoice_id == "INV-STRICT"
    for name, variant in _variants(token).items():
        if not variant:
            continue
        with pytest.raises(PayLinkForged):
            signer.verify(variant)
            pytest.fail(f"{name}: accepted")


async def test_a_respelt_link_is_401_at_the_portal(portal: Portal) -> None:
    invoice = await new_invoice(portal.pool)
    token = portal.token(invoice.invoice_id)
    for variant in (v for v in _variants(token).values() if v):
        r = await portal.http.post("/api/portal/sessions", headers={"Authorization": f"Bearer {variant}"})
        assert r.status_code == 401, variant


class AlwaysRefused:
    """A provider that refuses every message for good (an unsubscribed number)."""

    def __init__(self, inner: ConsoleSender) -> None:
        self.name = inner.name
        self._inner = inner

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        raise PermanentDeliveryError("carrier refused", provider=self.name, provider_code="21610")

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_a_failed_send_keeps_no_sealed_secret(
    harness_factory: HarnessFactory, db_pool: asyncpg.Pool
) -> None:
    console = ConsoleSender(db_pool)
    async with harness_factory(senders={Channel.EMAIL: console, Channel.SMS: AlwaysRefused(console)}) as h:
        invoice = await new_invoice(h.pool)
        attempt = await Attempt.open(h, invoice)
        with pytest.raises(AttemptRefused) as refused:
            await attempt.request_code(Channel.SMS)
        assert refused.value.type is ErrorType.DELIVERY_FAILED
        rows = await h.pool.fetch(
            "SELECT sent_at, secret_sealed FROM otp_challenges WHERE invoice_id = $1", invoice.invoice_id
        )
        assert len(rows) == 1 and rows[0]["sent_at"] is None
        assert rows[0]["secret_sealed"] is None


async def test_outside_dev_no_cdn_docs_and_hsts(harness: Harness) -> None:
    settings = test_settings(portalpay_env="prod")
    app = create_app(settings, harness.gateway, harness.pool)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="https://portal.test") as http:
        for path in ("/docs", "/redoc"):
            assert (await http.get(path)).status_code == 404
        spec = await http.get("/openapi.json")  # SPEC §4 keeps it
        assert spec.status_code == 200
        assert spec.headers["strict-transport-security"].startswith("max-age=")
    dev = create_app(test_settings(), harness.gateway, harness.pool)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(dev), base_url="http://portal.test") as http:
        assert (await http.get("/docs")).status_code == 200
        assert "strict-transport-security" not in (await http.get("/openapi.json")).headers
