"""The codec HTTP endpoint: operator-only, Temporal codec-server protocol, CORS for the UI."""

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from google.protobuf import json_format
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from domain.attempt import ClientContext
from infra.codec import AesGcmPayloadCodec
from infra.converter import build_data_converter
from starters.portal.codec_api import (
    SESSION_COOKIE,
    OperatorSignIn,
    add_codec_cors,
    codec_app_from_environment,
    codec_router,
    codec_ui_endpoint,
    codec_ui_key,
    create_codec_app,
)
from tests.codec.keys import KEY_A, KEY_B, OPERATOR_TOKEN, UI_ORIGIN, codec_keys_setting
from tests.support import Harness, create_invoice
from tests.support import test_settings as make_settings

EMAIL = "ada@example.com"
AUTH = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def _app(*ring: tuple[str, bytes]) -> FastAPI:
    app = FastAPI()
    app.include_router(codec_router(AesGcmPayloadCodec(list(ring or [KEY_A])), OPERATOR_TOKEN))
    add_codec_cors(app, [UI_ORIGIN])

    @app.get("/api/other")
    async def other() -> dict[str, str]:
        return {"ok": "yes"}

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(_app()), base_url="http://portal") as c:
        yield c


async def _encrypted_body(value: Any, *ring: tuple[str, bytes]) -> dict[str, Any]:
    payloads = await build_data_converter(list(ring or [KEY_A])).encode([value])
    return {"payloads": [json_format.MessageToDict(p) for p in payloads]}


def _payloads(answer: httpx.Response) -> list[Payload]:
    return [json_format.ParseDict(p, Payload()) for p in answer.json()["payloads"]]


async def test_decode_without_token_is_401(client: httpx.AsyncClient) -> None:
    answer = await client.post("/codec/decode", json=await _encrypted_body({"email": EMAIL}))
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert EMAIL not in answer.text


@pytest.mark.parametrize(
    "authorization", ["Bearer wrong-token", f"Basic {OPERATOR_TOKEN}", f"Bearer {OPERATOR_TOKEN}x", "Bearer "]
)
async def test_decode_with_a_wrong_credential_is_401(client: httpx.AsyncClient, authorization: str) -> None:
    answer = await client.post(
        "/codec/decode",
        json=await _encrypted_body({"email": EMAIL}),
        headers={"Authorization": authorization},
    )
    assert answer.status_code == 401


async def test_encode_without_token_is_401(client: httpx.AsyncClient) -> None:
    answer = await client.post("/codec/encode", json={"payloads": []})
    assert answer.status_code == 401


async def test_decode_with_operator_token(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/codec/decode",
        json=await _encrypted_body({"email": EMAIL}),
        headers={**AUTH, "X-Namespace": "default"},
    )
    assert answer.status_code == 200
    [payload] = _payloads(answer)
    assert payload.metadata["encoding"] == b"json/plain"
    assert json.loads(payload.data) == {"email": EMAIL}


async def test_encode_then_decode_through_the_endpoint(client: httpx.AsyncClient) -> None:
    plain = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps({"email": EMAIL}).encode())
    encoded = await client.post(
        "/codec/encode", json={"payloads": [json_format.MessageToDict(plain)]}, headers=AUTH
    )
    assert encoded.status_code == 200
    [sealed] = _payloads(encoded)
    assert EMAIL.encode() not in sealed.SerializeToString()
    decoded = await client.post("/codec/decode", json=encoded.json(), headers=AUTH)
    assert _payloads(decoded) == [plain]


async def test_decode_after_rotation_reads_history_under_the_old_key() -> None:
    body = await _encrypted_body({"email": EMAIL}, KEY_A)
    transport = httpx.ASGITransport(_app(KEY_B, KEY_A))
    async with httpx.AsyncClient(transport=transport, base_url="http://portal") as c:
        answer = await c.post("/codec/decode", json=body, headers=AUTH)
    assert answer.status_code == 200
    assert json.loads(_payloads(answer)[0].data) == {"email": EMAIL}


async def test_decode_under_an_unknown_key_is_422_naming_the_key() -> None:
    body = await _encrypted_body({"email": EMAIL}, KEY_A)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(_app(KEY_B)), base_url="http://portal") as c:
        answer = await c.post("/codec/decode", json=body, headers=AUTH)
    assert answer.status_code == 422
    assert "key-a" in answer.json()["detail"]
    assert EMAIL not in answer.text


@pytest.mark.parametrize(
    "body", [b"not json", b"[1, 2]", b'{"payloads": "nope"}', b'{"payloads": [{"data": 5}]}']
)
async def test_malformed_body_is_400(client: httpx.AsyncClient, body: bytes) -> None:
    answer = await client.post(
        "/codec/decode", content=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert answer.status_code == 400


async def test_empty_batch_answers_empty_payloads(client: httpx.AsyncClient) -> None:
    answer = await client.post("/codec/decode", json={}, headers=AUTH)
    assert answer.status_code == 200
    assert answer.json() == {"payloads": []}


async def test_cors_preflight_from_the_ui_origin(client: httpx.AsyncClient) -> None:
    answer = await client.options(
        "/codec/decode",
        headers={
            "Origin": UI_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
        },
    )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == UI_ORIGIN
    assert answer.headers["access-control-allow-credentials"] == "true"
    allowed = {h.strip().lower() for h in answer.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "x-namespace"} <= allowed
    assert "POST" in answer.headers["access-control-allow-methods"]


async def test_cors_preflight_from_another_origin_is_refused(client: httpx.AsyncClient) -> None:
    answer = await client.options(
        "/codec/decode",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert answer.status_code == 400
    assert "access-control-allow-origin" not in answer.headers


async def test_cors_headers_on_401_so_the_ui_can_tell(client: httpx.AsyncClient) -> None:
    answer = await client.post("/codec/decode", json={}, headers={"Origin": UI_ORIGIN})
    assert answer.status_code == 401
    assert answer.headers["access-control-allow-origin"] == UI_ORIGIN


async def test_cors_is_scoped_to_the_codec_paths(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/other", headers={"Origin": UI_ORIGIN})
    assert answer.status_code == 200
    assert "access-control-allow-origin" not in answer.headers


async def test_ui_capability_path(client: httpx.AsyncClient) -> None:
    endpoint = codec_ui_endpoint("http://portal/", OPERATOR_TOKEN)
    assert OPERATOR_TOKEN not in endpoint
    body = await _encrypted_body({"email": EMAIL})
    answer = await client.post(f"{endpoint}/decode", json=body, headers={"X-Namespace": "default"})
    assert answer.status_code == 200
    assert json.loads(_payloads(answer)[0].data) == {"email": EMAIL}
    wrong = await client.post(f"/codec/ui/{codec_ui_key('another-token')}/decode", json=body)
    assert wrong.status_code == 401


async def test_browser_sign_in_sets_a_cookie_that_decodes(app_pool: asyncpg.Pool) -> None:
    app = FastAPI()
    app.include_router(
        codec_router(AesGcmPayloadCodec([KEY_A]), OPERATOR_TOKEN, sign_in=OperatorSignIn(app_pool))
    )
    transport = httpx.ASGITransport(app, client=("198.51.100.77", 4000))
    client = httpx.AsyncClient(transport=transport, base_url="http://portal")
    form = await client.get("/codec/login")
    assert form.status_code == 200 and 'name="token"' in form.text and 'name="operator"' in form.text

    refused = await client.post("/codec/login", data={"token": "wrong", "operator": "ops@example.com"})
    assert refused.status_code == 401
    assert SESSION_COOKIE not in refused.cookies

    signed_in = await client.post(
        "/codec/login", data={"token": OPERATOR_TOKEN, "operator": "ops@example.com"}
    )
    assert signed_in.status_code == 200
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Path=/codec" in cookie and "samesite=lax" in cookie.lower()
    assert OPERATOR_TOKEN not in cookie

    answer = await client.post("/codec/decode", json=await _encrypted_body({"email": EMAIL}))
    assert answer.status_code == 200
    assert json.loads(_payloads(answer)[0].data) == {"email": EMAIL}

    await client.post("/codec/logout")
    client.cookies.clear()
    assert (await client.post("/codec/decode", json={})).status_code == 401
    await client.aclose()


async def test_without_the_sessions_database_there_is_no_browser_sign_in(client: httpx.AsyncClient) -> None:
    assert (
        await client.post("/codec/login", data={"token": OPERATOR_TOKEN, "operator": "x"})
    ).status_code == 404


async def test_standalone_codec_app_from_settings() -> None:
    settings = make_settings(
        codec_keys=codec_keys_setting(KEY_B, KEY_A),
        operator_api_token=OPERATOR_TOKEN,
        codec_cors_origins=f"{UI_ORIGIN}, http://127.0.0.1:8080/",
    )
    app = create_codec_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://codec") as c:
        assert (await c.get("/healthz")).json() == {"status": "ok"}
        body = await _encrypted_body({"email": EMAIL}, KEY_A)
        assert (await c.post("/codec/decode", json=body)).status_code == 401
        answer = await c.post("/codec/decode", json=body, headers=AUTH)
        assert json.loads(_payloads(answer)[0].data) == {"email": EMAIL}
        preflight = await c.options(
            "/codec/decode",
            headers={"Origin": "http://127.0.0.1:8080", "Access-Control-Request-Method": "POST"},
        )
        assert preflight.headers["access-control-allow-origin"] == "http://127.0.0.1:8080"


def test_wildcard_origin_is_refused() -> None:
    with pytest.raises(ValueError, match="origins"):
        add_codec_cors(FastAPI(), ["*"])


def _payloads_in(message: Message, found: list[Payload]) -> list[Payload]:
    """Every payload a history event carries, search attributes aside (they are never encrypted)."""
    for field, value in message.ListFields():
        if field.name == "search_attributes":
            continue
        if field.message_type is None:
            continue
        if isinstance(value, Message):
            items = [value]
        elif field.message_type.GetOptions().map_entry:
            items = list(value.values())
        else:
            items = list(value)
        for item in items:
            if isinstance(item, Payload):
                found.append(item)
            elif isinstance(item, Message):
                _payloads_in(item, found)
    return found


@contextlib.asynccontextmanager
async def _served_over_http(app: FastAPI) -> AsyncIterator[str]:
    """The app behind a real socket on a free loopback port, as the Temporal UI reaches it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(30):
            while not server.started:
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await serving
        sock.close()


async def test_the_endpoint_decodes_a_real_attempt_history_over_http(harness: Harness) -> None:
    invoice = await create_invoice(harness.pool)
    marker = f"codec-probe-{uuid.uuid4().hex}"
    await harness.gateway.open(invoice.invoice_id, ClientContext(ip="203.0.113.9", user_agent=marker))
    # What the server stores, fetched without any codec: what an operator without the keys sees.
    raw_client = Client(harness.client.service_client, namespace=harness.client.namespace)
    history = await raw_client.get_workflow_handle(f"pay-invoice-{invoice.invoice_id}").fetch_history()
    payloads = [p for event in history.events for p in _payloads_in(event, [])]
    assert len(payloads) >= 3  # the input, the open update's argument and answer, activity results
    for payload in payloads:
        assert payload.metadata["encoding"] == b"binary/encrypted"
        assert marker.encode() not in payload.SerializeToString()
        assert invoice.invoice_id.encode() not in payload.SerializeToString()

    body = {"payloads": [json_format.MessageToDict(p) for p in payloads]}
    async with _served_over_http(create_codec_app(harness.settings)) as url, httpx.AsyncClient() as http:
        refused = await http.post(f"{url}/codec/decode", json=body)
        answer = await http.post(
            f"{url}/codec/decode",
            json=body,
            headers={"Authorization": f"Bearer {harness.settings.secret('operator_api_token')}"},
        )
    assert refused.status_code == 401 and marker not in refused.text
    assert answer.status_code == 200
    decoded = _payloads(answer)
    assert len(decoded) == len(payloads)
    assert all(p.metadata["encoding"] != b"binary/encrypted" for p in decoded)
    plain = b"\n".join(p.data for p in decoded)
    # What the attempt recorded (the browser that opened it, the invoice) is readable once decoded.
    assert marker.encode() in plain
    assert invoice.invoice_id.encode() in plain


async def test_codec_app_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTALPAY_ENV", "prod")
    monkeypatch.setenv("OPERATOR_API_TOKEN", OPERATOR_TOKEN)
    monkeypatch.setenv("CODEC_KEYS", codec_keys_setting(KEY_A))
    app = codec_app_from_environment()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://codec") as c:
        answer = await c.post("/codec/decode", json=await _encrypted_body({"email": EMAIL}), headers=AUTH)
    assert json.loads(_payloads(answer)[0].data) == {"email": EMAIL}
