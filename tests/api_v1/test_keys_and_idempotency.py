"""SPEC §12 API keys and the /api/v1 gate: 401/403, the rate limit, and every Idempotency-Key case.

The idempotency cases run against routes added to the app by the test, under /api/v1, with no
idempotency code of their own: the gate must cover any POST/PUT there (the webhook routes too).
"""

import asyncio
import itertools
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from fastapi import Depends

from domain.api_scopes import EVENTS_READ, PAYMENTS_READ
from infra.stores import api_keys
from starters.portal.api_v1.auth import ApiKeyPrincipal, RateLimiter, require_scope
from tests.api_v1.conftest import Api

PROBE = "/api/v1/test-probe"


def _add_probe_routes(api: Api) -> dict[str, object]:
    """A write that answers something new each time it really runs, and one that waits on a gate."""
    runs = itertools.count(1)
    gate: dict[str, object] = {"release": asyncio.Event(), "entered": asyncio.Event()}
    app = api.portal.app

    @app.post(PROBE)
    async def probe(
        body: dict[str, object], principal: ApiKeyPrincipal = Depends(require_scope(PAYMENTS_READ))
    ) -> dict[str, object]:
        return {"run": next(runs), "nonce": uuid.uuid4().hex, "echo": body, "key": principal.id}

    @app.put(PROBE + "/slow")
    async def slow(
        body: dict[str, object], _: ApiKeyPrincipal = Depends(require_scope(PAYMENTS_READ))
    ) -> dict[str, object]:
        entered = gate["entered"]
        release = gate["release"]
        assert isinstance(entered, asyncio.Event) and isinstance(release, asyncio.Event)
        entered.set()
        await release.wait()
        return {"run": next(runs), "nonce": uuid.uuid4().hex}

    return gate


async def test_a_missing_unknown_revoked_or_expired_key_is_401(api: Api) -> None:
    _add_probe_routes(api)
    key_id, secret = await api.new_key()
    assert (await api.http.post(PROBE, json={}, headers=api.bearer(secret))).status_code == 200

    r = await api.http.post(PROBE, json={})
    assert r.status_code == 401 and r.json()["error"] == "ApiKeyMissing"
    r = await api.http.post(PROBE, json={}, headers=api.bearer(secret + "x"))
    assert r.status_code == 401 and r.json()["error"] == "ApiKeyInvalid"
    # A staff token is not an API key.
    r = await api.http.post(PROBE, json={}, headers=api.portal.staff)
    assert r.status_code == 401

    await api_keys.revoke_key(api.portal.pool, key_id, datetime.now(UTC))
    r = await api.http.post(PROBE, json={}, headers=api.bearer(secret))
    assert r.status_code == 401 and r.json()["reason"] == "api_key_revoked", r.text
    r = await api.http.get("/api/v1/events", headers=api.bearer(secret))
    assert r.status_code == 401


async def test_a_rolled_key_works_until_its_expiry_and_the_new_one_at_once(api: Api) -> None:
    _add_probe_routes(api)
    pepper = api.portal.harness.settings.secret("api_key_pepper").encode()
    old_id, old_secret = await api.new_key()
    async with api.portal.pool.acquire() as conn, conn.transaction():
        rolled = await api_keys.roll_key(
            conn, pepper=pepper, key_id=old_id, old_valid_until=datetime.now(UTC) + timedelta(hours=1)
        )
    assert rolled is not None and rolled.record.rolled_from == old_id
    assert (await api.http.post(PROBE, json={}, headers=api.bearer(old_secret))).status_code == 200
    assert (await api.http.post(PROBE, json={}, headers=api.bearer(rolled.secret))).status_code == 200
    await api.portal.pool.execute(
        "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", old_id
    )
    r = await api.http.post(PROBE, json={}, headers=api.bearer(old_secret))
    assert r.status_code == 401 and r.json()["reason"] == "api_key_expired"
    assert (await api.http.post(PROBE, json={}, headers=api.bearer(rolled.secret))).status_code == 200


async def test_a_key_without_the_scope_is_403_and_the_secret_is_only_stored_as_a_keyed_hash(api: Api) -> None:
    _add_probe_routes(api)
    key_id, secret = await api.new_key(EVENTS_READ)
    r = await api.http.post(PROBE, json={}, headers=api.bearer(secret))
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "ApiKeyScopeMissing" and "payments:read" in r.json()["message"]
    assert secret.startswith("ppk_test_") and len(secret) >= len("ppk_test_") + 32
    row = await api.portal.pool.fetchrow("SELECT * FROM api_keys WHERE id = $1", key_id)
    assert row is not None and row["last_used_at"] is not None
    stored = " ".join(str(v) for v in row.values())
    assert secret not in stored and secret[len("ppk_test_") :] not in stored
    assert secret.startswith(row["prefix"]) and len(row["prefix"]) <= len("ppk_test_") + 6


async def test_more_than_the_limit_in_one_second_is_429_with_retry_after(api: Api) -> None:
    _add_probe_routes(api)
    now = [1000.0]
    api.portal.app.state.api_v1.limiter = RateLimiter(3, clock=lambda: now[0])
    answers = [await api.http.post(PROBE, json={}, headers=api.headers) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert answers[3].headers["Retry-After"] == "1" and answers[3].json()["error"] == "RateLimited"
    # Another key has its own budget; the next second this one has its budget back.
    _, other = await api.new_key()
    assert (await api.http.post(PROBE, json={}, headers=api.bearer(other))).status_code == 200
    now[0] += 1.0
    assert (await api.http.post(PROBE, json={}, headers=api.headers)).status_code == 200


async def test_the_same_key_and_body_replays_the_first_answer_byte_for_byte(api: Api) -> None:
    _add_probe_routes(api)
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    first = await api.http.post(PROBE, json={"a": 1, "b": "x"}, headers={**api.headers, **key})
    assert first.status_code == 200 and "idempotent-replayed" not in first.headers
    # The same body spelled differently (key order, spacing) is the same request.
    again = await api.http.post(
        PROBE,
        content=b'{ "b": "x",  "a": 1 }',
        headers={**api.headers, **key, "Content-Type": "application/json"},
    )
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content  # the nonce too: it did not run again
    without_key = await api.http.post(PROBE, json={"a": 1, "b": "x"}, headers=api.headers)
    assert without_key.json()["run"] == first.json()["run"] + 1

    # Another body with the key: 422, and nothing ran.
    other = await api.http.post(PROBE, json={"a": 2}, headers={**api.headers, **key})
    assert other.status_code == 422 and other.json()["error"] == "IdempotencyKeyReused"
    assert other.json()["param"] == "Idempotency-Key"
    # Keys belong to one API key: another key may use the same string for its own request.
    _, secret = await api.new_key()
    mine = await api.http.post(PROBE, json={"a": 2}, headers={**api.bearer(secret), **key})
    assert mine.status_code == 200 and "idempotent-replayed" not in mine.headers
    # A 4xx answer is an answer like any other: replayed too.
    bad_key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    r1 = await api.http.post(
        PROBE, content=b"[1]", headers={**api.headers, **bad_key, "Content-Type": "application/json"}
    )
    r2 = await api.http.post(
        PROBE, content=b"[1]", headers={**api.headers, **bad_key, "Content-Type": "application/json"}
    )
    assert r1.status_code == r2.status_code == 422 and r2.content == r1.content
    assert r2.headers["idempotent-replayed"] == "true"


async def test_the_same_key_while_the_first_still_runs_is_409(api: Api) -> None:
    gate = _add_probe_routes(api)
    entered, release = gate["entered"], gate["release"]
    assert isinstance(entered, asyncio.Event) and isinstance(release, asyncio.Event)
    headers = {**api.headers, "Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    first = asyncio.create_task(api.http.put(PROBE + "/slow", json={"n": 1}, headers=headers))
    await asyncio.wait_for(entered.wait(), 30)
    second = await api.http.put(PROBE + "/slow", json={"n": 1}, headers=headers)
    assert second.status_code == 409 and second.json()["error"] == "IdempotencyKeyInUse", second.text
    release.set()
    answer = await asyncio.wait_for(first, 30)
    assert answer.status_code == 200
    third = await api.http.put(PROBE + "/slow", json={"n": 1}, headers=headers)
    assert third.status_code == 200 and third.content == answer.content
    assert third.headers["idempotent-replayed"] == "true"


async def test_an_idempotency_key_is_kept_24_hours(api: Api) -> None:
    _add_probe_routes(api)
    headers = {**api.headers, "Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    first = await api.http.post(PROBE, json={}, headers=headers)
    await api.portal.pool.execute(
        "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE api_key_id = $1 AND key = $2",
        api.key_id,
        headers["Idempotency-Key"],
    )
    later = await api.http.post(PROBE, json={}, headers=headers)
    assert later.status_code == 200 and "idempotent-replayed" not in later.headers
    assert later.json()["run"] == first.json()["run"] + 1


async def test_the_app_role_may_purge_old_idempotency_answers_and_nothing_else(api: Api) -> None:
    app_pool = api.portal.harness.app_pool
    assert app_pool is not None
    # What `claim` runs now and then, as the app's least-privilege role.
    await app_pool.execute("DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await app_pool.execute("DELETE FROM api_keys WHERE false")
