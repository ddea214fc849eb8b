"""TRUSTED_PROXIES (SPEC §11): the ACH authorization records the customer's address, not the proxy's,
and nobody but a trusted proxy can choose the address that is recorded."""

from typing import Any

import httpx
import pytest

from starters.portal.app import build_portal_app
from starters.portal.codec_api import SESSION_COOKIE
from tests.hostile.helpers import bank, session_path, unique_phone
from tests.portal.conftest import CLIENT_IP, Portal, PortalFactory
from tests.support import create_invoice, test_settings

CUSTOMER_IP = "198.51.100.23"
SPOOFED_IP = "192.0.2.66"


async def _pay_a_deposit(portal: Portal, headers: dict[str, str]) -> tuple[str | None, str | None]:
    """(ip on the ATTEMPT_STARTED audit row, ip on the payment's authorization record)."""
    inv = await create_invoice(portal.pool, kind="deposit", amount_cents=20000, phone=unique_phone())
    auth = {**portal.auth(inv.invoice_id), **headers}
    r = await portal.http.post("/api/portal/sessions", headers=auth)
    assert r.status_code == 200, r.text
    sid = r.json()["session_id"]
    r = await portal.http.post(session_path(sid, "/payment"), json=bank(), headers=auth)
    assert r.status_code == 200 and r.json()["status"] == "PAID", r.text
    started = await portal.pool.fetchval(
        "SELECT ip FROM audit_events WHERE invoice_id = $1 AND event_type = 'ATTEMPT_STARTED'", inv.invoice_id
    )
    paid = await portal.pool.fetchval("SELECT ip FROM payments WHERE invoice_id = $1", inv.invoice_id)
    return started, paid


FORWARDED = {"X-Forwarded-For": CUSTOMER_IP, "X-Forwarded-Proto": "https"}


async def test_without_trusted_proxies_the_peer_is_recorded_whatever_the_headers_say(portal: Portal) -> None:
    assert await _pay_a_deposit(portal, FORWARDED) == (CLIENT_IP, CLIENT_IP)


@pytest.mark.parametrize(
    ("trusted", "headers", "recorded"),
    [
        # The peer (203.0.113.9) is the proxy: the customer's address comes from its header.
        ("203.0.113.0/24", FORWARDED, CUSTOMER_IP),
        # A client-written entry further left proves nothing: the nearest untrusted hop wins.
        ("203.0.113.9", {"X-Forwarded-For": f"{SPOOFED_IP}, {CUSTOMER_IP}"}, CUSTOMER_IP),
        # Two proxies in a row, both trusted: walk past the inner one.
        (
            "203.0.113.9,10.0.0.0/8",
            {"X-Forwarded-For": f"{SPOOFED_IP}, {CUSTOMER_IP}, 10.1.2.3"},
            CUSTOMER_IP,
        ),
        # Garbage from the proxy's side: keep the peer we know rather than guess.
        ("203.0.113.9", {"X-Forwarded-For": "not-an-ip"}, CLIENT_IP),
        # A proxy list that does not include the peer: headers ignored.
        ("10.0.0.0/8", FORWARDED, CLIENT_IP),
    ],
)
async def test_trusted_proxies_decide_whose_address_is_recorded(
    portal_factory: PortalFactory, trusted: str, headers: dict[str, str], recorded: str
) -> None:
    async with portal_factory(trusted_proxies=trusted) as portal:
        assert await _pay_a_deposit(portal, headers) == (recorded, recorded)


async def _codec_cookie(portal: Portal, headers: dict[str, str], **overrides: Any) -> str:
    h = portal.harness
    settings = test_settings(**overrides)  # fresh: derived settings are cached on the instance
    app = build_portal_app(settings, h.client, h.app_pool or h.pool, task_queue=h.task_queue)
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 50123))
    async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as http:
        r = await http.post(
            "/codec/login",
            data={"token": settings.secret("operator_api_token"), "operator": "ops@example.com"},
            headers=headers,
        )
    assert r.status_code == 200, r.text
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(SESSION_COOKIE + "=")
    return cookie


async def test_the_codec_cookie_is_secure_outside_dev(portal: Portal) -> None:
    # Dev over plain http (`portalpay dev` on 127.0.0.1): not Secure, or the browser would drop it.
    assert "secure" not in (await _codec_cookie(portal, {})).lower()
    # Dev behind a trusted proxy that terminated TLS: the forwarded scheme counts.
    behind_proxy = await _codec_cookie(
        portal, {"X-Forwarded-Proto": "https"}, trusted_proxies="203.0.113.0/24"
    )
    assert "secure" in behind_proxy.lower()
    # The same header from an untrusted peer changes nothing.
    assert "secure" not in (await _codec_cookie(portal, {"X-Forwarded-Proto": "https"})).lower()
    # Prod: always Secure, whatever the scheme the app sees.
    assert "secure" in (await _codec_cookie(portal, {}, portalpay_env="prod")).lower()
