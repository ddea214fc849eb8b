"""Malformed input at the edge (SPEC §11, issue 10 finding 7): 413 before the body is read whole,
and a clean 4xx — never a 5xx — for NUL, bad encodings and broken JSON on every route."""

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from starters.portal.app import build_portal_app
from starters.portal.codec_api import MAX_BODY_BYTES as CODEC_MAX_BODY_BYTES
from starters.portal.webhooks.twilio import STATUS_PATH
from tests.hostile.helpers import bank, session_path, unique_email, unique_phone
from tests.portal.conftest import CLIENT_IP, Portal, PortalFactory
from tests.support import create_invoice, test_settings

EIGHT_MIB = 8 * 1024 * 1024


def _assembled(portal: Portal) -> FastAPI:
    """The whole portal process's app: customer and staff API, pages, codec, Twilio callbacks."""
    h = portal.harness
    return build_portal_app(h.settings, h.client, h.app_pool or h.pool, task_queue=h.task_queue)


async def test_an_8_mib_body_is_413_from_its_content_length(portal: Portal) -> None:
    inv = await create_invoice(portal.pool, kind="deposit", amount_cents=20000, phone=unique_phone())
    sid = (await portal.open(inv.invoice_id))["session_id"]
    r = await portal.http.post(
        session_path(sid, "/payment"),
        content=b"x" * EIGHT_MIB,
        headers={**portal.auth(inv.invoice_id), "Content-Type": "application/json"},
    )
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "RequestTooLarge"


@pytest.mark.parametrize("route", ["payment", "staff", "codec"])
async def test_a_streamed_body_without_length_is_cut_off_at_the_limit(portal: Portal, route: str) -> None:
    """No Content-Length: the guard counts chunks as they arrive and stops reading past the limit."""
    app = _assembled(portal)
    pulled = 0
    chunk = b"x" * 16384

    limit = CODEC_MAX_BODY_BYTES if route == "codec" else portal.harness.settings.max_request_bytes
    total = 2 * CODEC_MAX_BODY_BYTES if route == "codec" else EIGHT_MIB

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(total // len(chunk)):
            pulled += 1
            yield chunk

    inv = await create_invoice(portal.pool, kind="deposit", amount_cents=20000, phone=unique_phone())
    sid = (await portal.open(inv.invoice_id))["session_id"]
    target, headers = {
        "payment": (session_path(sid, "/payment"), portal.auth(inv.invoice_id)),
        "staff": (f"/api/staff/customers/{inv.customer_id}/portal-payer", portal.staff),
        "codec": (
            "/codec/decode",
            {"Authorization": f"Bearer {portal.harness.settings.secret('operator_api_token')}"},
        ),
    }[route]
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 50123))
    async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as http:
        method = "PUT" if route == "staff" else "POST"
        r = await http.request(
            method, target, content=body(), headers={**headers, "Content-Type": "application/json"}
        )
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "RequestTooLarge"
    # Reading stopped one chunk past the limit, long before the end of the body.
    assert limit < pulled * len(chunk) <= limit + len(chunk), (pulled, limit)


async def test_the_limit_is_a_setting(portal_factory: PortalFactory) -> None:
    async with portal_factory(max_request_bytes=300) as portal:
        inv = await create_invoice(portal.pool, kind="deposit", amount_cents=20000, phone=unique_phone())
        sid = (await portal.open(inv.invoice_id))["session_id"]
        padded = bank(account_holder="A" * 120)
        r = await portal.http.post(
            session_path(sid, "/payment"),
            json={**padded, "x": "y" * 300},
            headers=portal.auth(inv.invoice_id),
        )
        assert r.status_code == 413
        r = await portal.http.post(
            session_path(sid, "/payment"), json=bank(), headers=portal.auth(inv.invoice_id)
        )
        assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "target",
    [
        "/api/staff/customers/C-1%00001/contacts",  # finding 7: answered 500
        "/api/staff/invoices/INV%00/audit",
        "/api/staff/customers/%FF%FE/contacts",  # not UTF-8
        "/api/staff/customers/C-1%0A/contacts",
        "/pay/abc%00def",
        "/api/portal/sessions/INV-1~%00",
    ],
)
async def test_nul_or_bad_encoding_in_a_path_is_400(portal: Portal, target: str) -> None:
    for headers in (portal.staff, {}):
        r = await portal.http.get(target, headers=headers)
        assert r.status_code == 400, (target, r.status_code, r.text)
        assert r.json()["error"] == "MalformedPath"


async def test_garbage_credentials_are_401_not_500(portal: Portal) -> None:
    inv = await create_invoice(portal.pool, phone=unique_phone(), email=unique_email())
    for value in (b"Bearer \xff\xfe\xe9", b"Bearer a.b.c.d.\xe9", b"Bearer " + b"A" * 5000, b"\xe9"):
        r = await portal.http.post("/api/portal/sessions", headers={b"Authorization": value})
        assert r.status_code == 401, (value[:20], r.status_code, r.text)
        r = await portal.http.get(
            f"/api/staff/customers/{inv.customer_id}/contacts", headers={b"Authorization": value}
        )
        assert r.status_code == 401, (value[:20], r.status_code, r.text)


HOSTILE_BODIES: list[tuple[str, bytes]] = [
    ("invalid UTF-8", b'{"contact_id": "\xff\xfe"}'),
    ("truncated JSON", b'{"contact_id": '),
    ("NUL escaped in JSON", b'{"contact_id": "C\\u0000X", "code": "12345\\u0000", "channel": "sms\\u0000"}'),
    ("raw NUL byte", b'{"contact_id": "C\x00X"}'),
    ("lone surrogate", b'{"contact_id": "\\ud800", "account_holder": "\\udfff"}'),
    ("not an object", b"[[[[[[[[[[[[]]]]]]]]]]]]"),
    ("huge number", b'{"contact_id": 1e999999, "amount_cents": 123456789012345678901234567890}'),
]
FORM_BODIES: list[tuple[str, bytes]] = [
    ("form with NUL and bad percent-encoding", b"MessageSid=SM%00&MessageStatus=%FF%FE&token=%00"),
    ("form with raw invalid UTF-8", b"MessageSid=\xff\xfe&To=\x00"),
]


def _all_routes(routes: Any) -> Any:
    # FastAPI keeps included routers as nodes of their own; their routes carry the full path.
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _all_routes(included.routes)
        else:
            yield route


def _fill(template: str, value: str) -> str:
    parts = []
    for segment in template.split("/"):
        parts.append(value if segment.startswith("{") and segment.endswith("}") else segment)
    return "/".join(parts)


async def test_no_route_answers_5xx_to_malformed_input(portal: Portal) -> None:
    """Every route of the assembled portal, each hostile body, with and without valid credentials."""
    app = _assembled(portal)
    inv = await create_invoice(portal.pool, phone=unique_phone(), email=unique_email())
    sid = (await portal.open(inv.invoice_id))["session_id"]
    credentials: list[dict[str, str]] = [
        {},
        portal.auth(inv.invoice_id),
        portal.staff,
        {"Authorization": f"Bearer {portal.harness.settings.secret('operator_api_token')}"},
    ]
    routes = [r for r in _all_routes(app.routes) if isinstance(r, Route)]
    assert any(r.path.startswith("/api/staff") for r in routes) and any("codec" in r.path for r in routes)
    failures: list[Any] = []
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 50123))
    async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as http:
        for route in routes:
            for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                for filler in (sid if "session" in route.path else inv.customer_id, "%00", "x%FFy"):
                    target = _fill(route.path, filler)
                    bodies = [("none", b"", "application/json")]
                    if method in ("POST", "PUT", "PATCH"):
                        bodies = [(label, body, "application/json") for label, body in HOSTILE_BODIES] + [
                            (label, body, "application/x-www-form-urlencoded") for label, body in FORM_BODIES
                        ]
                    for label, body, content_type in bodies:
                        for headers in credentials:
                            r = await http.request(
                                method,
                                target,
                                content=body,
                                headers={**headers, "Content-Type": content_type},
                            )
                            if r.status_code >= 500:
                                failures.append(
                                    (method, target, label, sorted(headers), r.status_code, r.text[:200])
                                )
    assert not failures, failures[:10]


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        # The NUL reaches the lookup by message id: PostgreSQL refuses it, the answer is 400.
        ({"MessageSid": "SM\x00abc", "MessageStatus": "delivered"}, 400),
        # Unknown message ids (after decoding): acknowledged and ignored, as for any stray report.
        ({"MessageSid": "SMabc", "MessageStatus": "undelivered\x00", "ErrorCode": "\x00"}, 200),
        ({"MessageSid": "SM" + "\udcff", "MessageStatus": "delivered"}, 200),
    ],
)
async def test_a_correctly_signed_webhook_with_poisoned_fields_is_never_5xx(
    portal: Portal, form: dict[str, str], expected: int
) -> None:
    """Past the signature check (whoever holds the Twilio token, or Twilio relaying garbage), a NUL
    reaches the database lookup: a clean 4xx, never a 500 that makes Twilio retry forever."""
    h = portal.harness
    token = "twilio-auth-token-" + "t" * 16
    url = "http://portal.test" + STATUS_PATH
    settings = test_settings(twilio_auth_token=token, twilio_status_callback_url=url)
    app = build_portal_app(settings, h.client, h.app_pool or h.pool, task_queue=h.task_queue)
    body = urlencode(form, encoding="utf-8", errors="surrogateescape").encode()
    params = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    signature = RequestValidator(token).compute_signature(url, params)
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 50123))
    async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as http:
        r = await http.post(
            STATUS_PATH,
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
        )
    assert r.status_code == expected, (r.status_code, r.text)  # 403 would mean the signature failed
