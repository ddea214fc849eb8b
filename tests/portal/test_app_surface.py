"""The app's other faces: pages, OpenAPI, health, the dev outbox (dev only), static assets."""

import json
import re
from typing import Any

import httpx

from starters.portal.app import create_app
from tests.portal.conftest import Portal, PortalFactory
from tests.support import create_invoice

CUSTOMER_ROWS = {
    ("post", "/api/portal/sessions"): (None, "SessionView"),
    ("get", "/api/portal/sessions/{session_id}"): (None, "SessionView"),
    ("post", "/api/portal/sessions/{session_id}/code"): ("RequestCodeBody", "CodeSentView"),
    ("post", "/api/portal/sessions/{session_id}/verify"): ("VerifyCodeBody", "VerifyView"),
    ("post", "/api/portal/sessions/{session_id}/payment"): ("PaymentBody", "PaymentResultView"),
    ("post", "/api/portal/sessions/{session_id}/cancel"): (None, "CancelView"),
    ("get", "/api/staff/customers/{customer_id}/contacts"): (None, "ContactsView"),
    ("put", "/api/staff/customers/{customer_id}/portal-payer"): ("DesignatePayerBody", "DesignationView"),
    ("post", "/api/staff/invoices/{invoice_id}/payment-requests"): (None, "PaymentRequestView"),
    ("get", "/api/staff/invoices/{invoice_id}/audit"): (None, "AuditTrailView"),
    ("patch", "/api/staff/contacts/{contact_id}"): ("ContactPatchBody", "ContactChangeView"),
}


def _ref(schema: dict[str, Any]) -> str:
    return str(schema.get("$ref", "")).rsplit("/", 1)[-1]


async def test_openapi_describes_every_call_with_its_models(portal: Portal) -> None:
    r = await portal.http.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    for (method, url), (request_model, answer_model) in CUSTOMER_ROWS.items():
        op = doc["paths"][url][method]
        answer = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert _ref(answer) == answer_model, url
        if request_model:
            body = op["requestBody"]["content"]["application/json"]["schema"]
            assert _ref(body) == request_model, url
        assert op["security"], url
        for code in ("401", "404", "422"):
            assert code in op["responses"], (url, code)
    for code in ("403", "409", "429"):
        assert code in doc["paths"]["/api/portal/sessions/{session_id}/code"]["post"]["responses"]
    schemas = doc["components"]["schemas"]
    assert set(schemas["SessionView"]["properties"]) >= {
        "session_id",
        "status",
        "invoice",
        "payer",
        "channels",
        "otp_required",
        "attempts_remaining",
        "code_expires_at",
        "resend_available_at",
        "payment",
    }
    assert set(schemas["PaymentView"]["properties"]) >= {"payment_id", "amount_cents", "account_last4"}
    assert schemas["PaymentBody"]["additionalProperties"] is False
    assert set(schemas["PaymentRequestView"]["properties"]) >= {"url", "recipient"}
    assert set(schemas["RecipientView"]["properties"]) >= {"contact_id", "name", "portal_payer"}
    assert "chain_ok" in schemas["AuditTrailView"]["properties"]
    assert {"PayLinkToken", "StaffToken"} <= set(doc["components"]["securitySchemes"])


async def test_healthz(portal: Portal) -> None:
    r = await portal.http.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok", "database": True}


async def test_dev_outbox_lists_messages_newest_last(portal: Portal) -> None:
    inv = await create_invoice(portal.pool)  # its own phone and email: no other test writes to them
    assert inv.phone and inv.email
    sid = (await portal.open(inv.invoice_id))["session_id"]
    auth = portal.auth(inv.invoice_id)
    await portal.http.post(f"/api/portal/sessions/{sid}/code", json={"channel": "sms"}, headers=auth)
    await portal.http.post(f"/api/portal/sessions/{sid}/code", json={"channel": "email"}, headers=auth)
    r = await portal.http.get("/dev/outbox")
    assert r.status_code == 200
    messages = r.json()
    assert set(messages[-1]) == {"channel", "to", "subject", "body", "created_at"}
    assert [m["to"] for m in messages if m["to"] in (inv.phone, inv.email)] == [inv.phone, inv.email]
    assert re.search(r"\b\d{6}\b", messages[-1]["body"])
    only_sms = (await portal.http.get("/dev/outbox", params={"to": inv.phone})).json()
    assert [m["channel"] for m in only_sms] == ["sms"]


async def test_dev_outbox_refuses_malformed_filters(portal: Portal) -> None:
    # A NUL byte used to reach PostgreSQL and come back as a 500 (found by schemathesis).
    # A control character is refused at the edge (400) before any route; the others by the route.
    for params, status in (({"to": "a\x00b"}, 400), ({"channel": "fax"}, 422), ({"to": "x" * 400}, 422)):
        r = await portal.http.get("/dev/outbox", params=params)
        assert r.status_code == status, params


async def test_dev_outbox_is_404_in_prod(portal_factory: PortalFactory) -> None:
    async with portal_factory() as dev:
        settings = dev.harness.settings.model_copy(update={"portalpay_env": "prod"})
        app = create_app(settings, dev.harness.gateway, dev.pool)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://prod.test"
        ) as http:
            assert (await http.get("/dev/outbox")).status_code == 404
            assert "/dev/outbox" not in (await http.get("/openapi.json")).json()["paths"]
            assert (await http.get("/healthz")).status_code == 200


def _config(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="portal-config">(.*?)</script>', html, re.S)
    assert match
    return dict(json.loads(match.group(1)))


async def test_pay_page_shows_the_invoice_and_carries_the_token(portal: Portal) -> None:
    inv = await create_invoice(portal.pool, amount_cents=99900)
    token = portal.token(inv.invoice_id)
    r = await portal.http.get(f"/pay/{token}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "Pay Your Invoice" in r.text and inv.invoice_id in r.text and "$999.00" in r.text
    assert 'data-initial-view="invoice"' in r.text
    assert _config(r.text)["token"] == token
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["referrer-policy"] == "no-referrer" and r.headers["cache-control"] == "no-store"
    for label in ("Verification code", "Routing number", "Account number", "Account holder name"):
        assert label in r.text
    assert 'name="viewport"' in r.text
    # Opening the page starts nothing: link scanners must not create attempts.
    assert (
        await portal.pool.fetchval("SELECT count(*) FROM audit_events WHERE invoice_id = $1", inv.invoice_id)
        == 0
    )


async def test_pay_page_for_bad_links_paid_and_locked_invoices(portal: Portal) -> None:
    inv = await create_invoice(portal.pool)
    forged = portal.token(inv.invoice_id)[:-4] + "AAAA"
    r = await portal.http.get(f"/pay/{forged}")
    assert r.status_code == 401 and "This link is not valid" in r.text and inv.invoice_id not in r.text
    r = await portal.http.get(f"/pay/{portal.expired_token(inv.invoice_id)}")
    assert r.status_code == 401 and "This link has expired" in r.text
    r = await portal.http.get(f"/pay/{portal.token('INV-DOES-NOT-EXIST')}")
    assert r.status_code == 404 and "Invoice not found" in r.text

    await portal.pool.execute(
        "UPDATE invoices SET locked_until = now() + interval '20 minutes' WHERE id = $1", inv.invoice_id
    )
    r = await portal.http.get(f"/pay/{portal.token(inv.invoice_id)}")
    assert 'data-initial-view="locked"' in r.text and _config(r.text)["locked_until"]

    await portal.pool.execute("UPDATE invoices SET status = 'paid' WHERE id = $1", inv.invoice_id)
    r = await portal.http.get(f"/pay/{portal.token(inv.invoice_id)}")
    assert r.status_code == 200 and 'data-initial-view="paid"' in r.text and "already paid" in r.text


async def test_invoice_ids_are_escaped_in_the_page(portal: Portal) -> None:
    inv = await create_invoice(portal.pool)
    evil = "</script><script>alert(1)</script>"
    await portal.pool.execute("UPDATE invoices SET number = $2 WHERE id = $1", inv.invoice_id, evil)
    r = await portal.http.get(f"/pay/{portal.token(inv.invoice_id)}")
    assert evil not in r.text and "&lt;/script&gt;" in r.text
    assert _config(r.text)["invoice_number"] == evil


async def test_static_assets_are_served(portal: Portal) -> None:
    js = await portal.http.get("/static/portal.js")
    css = await portal.http.get("/static/portal.css")
    assert js.status_code == 200 and "abaValid" in js.text
    assert css.status_code == 200
