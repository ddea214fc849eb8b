"""Issue 21, finding 1, tried again as described: the `/codec/login` cookie was one fixed value
derived from the key, shared by every operator and still valid after logout (and it opens the
Temporal UI through ui-proxy); 30 wrong tokens in 0.05 s were all answered; the sign-in page had no
CSP or frame-ancestors; `/codec/decode` (decrypted customer data) was not `no-store`; no HSTS."""

import hashlib
import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from infra.codec import AesGcmPayloadCodec
from infra.settings import Settings
from starters.portal.codec_api import (
    SESSION_COOKIE,
    OperatorSignIn,
    _derived_key,  # the old cookie's derivation, to show it opens nothing now
    codec_router,
    create_codec_app,
)
from tests.codec.keys import KEY_A, OPERATOR_TOKEN
from tests.support import TEST_CODEC_KEYS

ROOT = Path(__file__).resolve().parents[2]
OLD_SESSION_CONTEXT = b"portalpay operator-session v1"


def _app(pool: asyncpg.Pool, **limits: object) -> FastAPI:
    app = FastAPI()
    sign_in = OperatorSignIn(pool, **limits)  # type: ignore[arg-type]
    app.include_router(codec_router(AesGcmPayloadCodec([KEY_A]), OPERATOR_TOKEN, sign_in=sign_in))
    return app


def _address() -> str:
    """A client address of its own per test: the throttle counts per address."""
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


@pytest.fixture(autouse=True)
async def _refusals_stay_in_this_test(db_pool: asyncpg.Pool) -> AsyncIterator[None]:
    """The throttle's overall count is shared by the whole test session's database: the refused
    sign-ins made here are moved out of the window afterwards (kept, never deleted), so other
    tests that sign in are not throttled by these."""
    last = await db_pool.fetchval("SELECT coalesce(max(id), 0) FROM operator_sign_in_log")
    yield
    await db_pool.execute(
        "UPDATE operator_sign_in_log SET occurred_at = occurred_at - interval '1 day' WHERE id > $1", last
    )


@pytest.fixture
async def browser(app_pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(_app(app_pool), client=(_address(), 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://ui.test") as client:
        yield client


async def _sign_in(client: httpx.AsyncClient, operator: str = "ops@example.com") -> str:
    answer = await client.post("/codec/login", data={"token": OPERATOR_TOKEN, "operator": operator})
    assert answer.status_code == 200, answer.text
    cookie = answer.cookies[SESSION_COOKIE]
    client.cookies.clear()
    return cookie


async def _opens(client: httpx.AsyncClient, cookie: str) -> bool:
    answer = await client.get("/codec/session", cookies={SESSION_COOKIE: cookie})
    client.cookies.clear()
    assert answer.status_code in (204, 401)
    return answer.status_code == 204


async def test_each_sign_in_is_its_own_random_session(browser: httpx.AsyncClient) -> None:
    first = await _sign_in(browser, "ada@ops.example")
    second = await _sign_in(browser, "grace@ops.example")
    assert first != second
    # The old fixed value, derived from the token, is not a session.
    old = _derived_key(OPERATOR_TOKEN, OLD_SESSION_CONTEXT)
    assert old not in (first, second)
    assert not await _opens(browser, old)
    assert await _opens(browser, first) and await _opens(browser, second)


async def test_logout_kills_the_session_even_for_whoever_kept_the_cookie(
    browser: httpx.AsyncClient, app_pool: asyncpg.Pool
) -> None:
    kept = await _sign_in(browser)
    other = await _sign_in(browser, "someone.else@ops.example")
    out = await browser.post("/codec/logout", cookies={SESSION_COOKIE: kept})
    browser.cookies.clear()
    assert out.status_code == 204
    assert not await _opens(browser, kept)
    decode = await browser.post("/codec/decode", json={"payloads": []}, cookies={SESSION_COOKIE: kept})
    assert decode.status_code == 401
    # Another operator's session is theirs: one sign-out does not end it.
    assert await _opens(browser, other)


async def test_sessions_are_stored_hashed_and_expire(
    browser: httpx.AsyncClient, db_pool: asyncpg.Pool
) -> None:
    cookie = await _sign_in(browser, "expiry@ops.example")
    digest = hashlib.sha256(cookie.encode()).digest()
    row = await db_pool.fetchrow("SELECT * FROM operator_sessions WHERE token_hash = $1", digest)
    assert row is not None and row["operator"] == "expiry@ops.example"
    assert not await db_pool.fetchval(
        "SELECT count(*) FROM operator_sessions s WHERE s::text LIKE '%' || $1 || '%'", cookie
    )
    await db_pool.execute(
        "UPDATE operator_sessions SET expires_at = now() - interval '1 second' WHERE token_hash = $1", digest
    )
    assert not await _opens(browser, cookie)


async def test_an_idle_session_ends(app_pool: asyncpg.Pool, db_pool: asyncpg.Pool) -> None:
    transport = httpx.ASGITransport(_app(app_pool, session_idle=timedelta(minutes=5)), client=(_address(), 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://ui.test") as client:
        cookie = await _sign_in(client)
        await db_pool.execute(
            "UPDATE operator_sessions SET last_seen_at = now() - interval '6 minutes' WHERE token_hash = $1",
            hashlib.sha256(cookie.encode()).digest(),
        )
        assert not await _opens(client, cookie)


async def test_thirty_wrong_tokens_in_a_burst_are_throttled_per_address(app_pool: asyncpg.Pool) -> None:
    address = _address()
    transport = httpx.ASGITransport(_app(app_pool, max_refusals_overall=10_000), client=(address, 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://ui.test") as client:
        answers = [
            (await client.post("/codec/login", data={"token": f"guess-{i}", "operator": "x"})).status_code
            for i in range(30)
        ]
        assert answers[:10] == [401] * 10
        assert set(answers[10:]) == {429}
        # Throttled means the token is not even looked at: the right one is refused too.
        right = await client.post("/codec/login", data={"token": OPERATOR_TOKEN, "operator": "x"})
        assert right.status_code == 429 and SESSION_COOKIE not in right.cookies
        assert int(right.headers["retry-after"]) > 0
    # Another address is not punished for it.
    transport = httpx.ASGITransport(_app(app_pool, max_refusals_overall=10_000), client=(_address(), 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://ui.test") as client:
        await _sign_in(client)


async def test_guessing_from_many_addresses_is_throttled_overall(app_pool: asyncpg.Pool) -> None:
    here, before = (
        0,
        await app_pool.fetchval(
            "SELECT count(*) FROM operator_sign_in_log WHERE event = 'refused' AND occurred_at > now() - interval '15 minutes'"
        ),
    )
    app = _app(app_pool, max_refusals_overall=before + 5)
    statuses = []
    for _ in range(8):
        transport = httpx.ASGITransport(app, client=(_address(), 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://ui.test") as client:
            statuses.append(
                (await client.post("/codec/login", data={"token": "nope", "operator": "x"})).status_code
            )
            here += 1
    assert statuses.count(401) <= 5 and statuses[-1] == 429


async def test_sign_in_refusal_and_sign_out_are_audited(
    browser: httpx.AsyncClient, app_pool: asyncpg.Pool
) -> None:
    name = f"audit-{uuid.uuid4().hex[:8]}@ops.example"
    await browser.post("/codec/login", data={"token": "wrong", "operator": name})
    cookie = await _sign_in(browser, name)
    await browser.post("/codec/logout", cookies={SESSION_COOKIE: cookie})
    rows = await app_pool.fetch(
        "SELECT event, ip, user_agent FROM operator_sign_in_log WHERE operator = $1 ORDER BY id", name
    )
    assert [r["event"] for r in rows] == ["refused", "signed_in", "signed_out"]
    assert all(r["ip"] for r in rows)
    # The log is append-only for the app.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await app_pool.execute(
            "UPDATE operator_sign_in_log SET operator = 'someone' WHERE operator = $1", name
        )


async def test_the_sign_in_page_has_the_console_headers(browser: httpx.AsyncClient) -> None:
    for answer in (
        await browser.get("/codec/login"),
        await browser.post("/codec/login", data={"token": "wrong", "operator": "x"}),
    ):
        csp = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["referrer-policy"] == "no-referrer"


async def test_decoded_payloads_are_no_store(browser: httpx.AsyncClient) -> None:
    answer = await browser.post(
        "/codec/decode", json={"payloads": []}, headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    )
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"


async def test_hsts_outside_dev_on_the_codec_server() -> None:
    settings = Settings(
        _env_file=None,
        portalpay_env="prod",
        operator_api_token=OPERATOR_TOKEN,
        codec_keys=TEST_CODEC_KEYS,
        codec_cors_origins="https://temporal.example.com",
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(create_codec_app(settings)), base_url="https://codec.test"
    ) as client:
        answer = await client.post(
            "/codec/decode", json={"payloads": []}, headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        )
    assert answer.headers["strict-transport-security"].startswith("max-age=")
    assert answer.headers["cache-control"] == "no-store"


def test_the_ui_proxy_sends_the_console_headers() -> None:
    conf = (ROOT / "deploy" / "ui-proxy" / "nginx.conf").read_text()
    server = re.search(r"server \{(.*)\n\}", conf, re.S)
    assert server is not None
    headers = dict(re.findall(r"^    add_header (\S+) \"([^\"]*)\" always;", server.group(1), re.M))
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Strict-Transport-Security"].startswith("max-age=")
    # nginx drops server-level add_header in a location that declares its own.
    assert len(re.findall(r"^\s*add_header", conf, re.M)) == len(headers)


async def test_a_sign_in_without_a_name_is_its_own_session_logged_by_address(
    browser: httpx.AsyncClient, app_pool: asyncpg.Pool
) -> None:
    answer = await browser.post("/codec/login", data={"token": OPERATOR_TOKEN})
    assert answer.status_code == 200
    cookie = answer.cookies[SESSION_COOKIE]
    browser.cookies.clear()
    operator = await app_pool.fetchval(
        "SELECT operator FROM operator_sessions WHERE token_hash = $1",
        hashlib.sha256(cookie.encode()).digest(),
    )
    assert operator.startswith("unnamed operator at ")
    bad = await browser.post("/codec/login", data={"token": OPERATOR_TOKEN, "operator": "ops\x00"})
    assert bad.status_code == 422 and SESSION_COOKIE not in bad.cookies


async def test_malformed_sign_in_forms_are_refused_without_counting_as_guesses(
    app_pool: asyncpg.Pool,
) -> None:
    """Only a plausible token is a guess the throttle counts: an empty, binary or oversized one
    can never be right, so a fuzzer's garbage does not lock the operators of its address out."""
    address = _address()
    transport = httpx.ASGITransport(_app(app_pool, max_refusals_overall=10_000), client=(address, 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://ui.test") as client:
        for body in (
            b"",
            b"token=",
            b"token=%00",
            b"token=\xff\xfe",
            b'{"token": "x"}',
            b"token=" + b"a" * 600,
        ):
            answer = await client.post(
                "/codec/login", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
            )
            assert answer.status_code == 401
        counted = await app_pool.fetchval(
            "SELECT count(*) FROM operator_sign_in_log WHERE ip = $1 AND event = 'refused'", address
        )
        assert counted == 0
        await _sign_in(client)
