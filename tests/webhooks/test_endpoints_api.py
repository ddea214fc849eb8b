"""`/api/v1/webhook-endpoints` and `/api/v1/events/{id}/redeliver` on the real portal app, real
PostgreSQL and Temporal, with a receiver on loopback (SPEC §12)."""

import base64
import uuid
from collections.abc import Callable

import asyncpg

from domain.api_scopes import EVENTS_READ
from domain.events import EventType
from domain.webhooks import TryOutcome, delivery_workflow_id
from infra.stores.events import record_event
from tests.api_v1.conftest import Api, ApiFactory
from tests.lifecycle.services import serve, wait_for
from tests.webhooks.support import delivery_outcome
from tools.standins.webhook_receiver import WebhookReceiver

ENDPOINTS = "/api/v1/webhook-endpoints"


async def _create(api: Api, url: str, events: list[str] | None = None) -> dict[str, object]:
    r = await api.http.post(ENDPOINTS, json={"url": url, "events": events or ["*"]}, headers=api.headers)
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    return body


async def _event(pool: asyncpg.Pool, event_type: EventType = EventType.INVOICE_PAID) -> str:
    async with pool.acquire() as conn, conn.transaction():
        return await record_event(conn, event_type, {"object": "invoice", "id": uuid.uuid4().hex})


async def test_an_endpoint_is_made_with_a_secret_shown_once_and_stored_sealed(
    api: Api, db_pool: asyncpg.Pool
) -> None:
    made = await _create(api, "http://127.0.0.1:9/hook", ["payment.settled", "payment.returned"])
    secret = str(made["secret"])
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert made["events"] == ["payment.returned", "payment.settled"] and made["enabled"] is True
    endpoint_id = str(made["id"])
    try:
        listed = (await api.http.get(ENDPOINTS, params={"limit": 100}, headers=api.headers)).json()
        mine = [e for e in listed["data"] if e["id"] == endpoint_id]
        assert mine and "secret" not in mine[0] and secret not in str(listed)
        # Nowhere in the row, in any form a reader could use.
        row = await db_pool.fetchval(
            "SELECT row_to_json(e)::text FROM webhook_endpoints e WHERE id = $1", endpoint_id
        )
        raw = secret.removeprefix("whsec_")
        assert secret not in row and raw not in row and base64.b64decode(raw).hex() not in row
        audit = await db_pool.fetch(
            "SELECT actor, details FROM audit_events WHERE event_type = 'WEBHOOK_ENDPOINT_CHANGED'"
            " AND details->>'endpoint_id' = $1",
            endpoint_id,
        )
        assert [a["actor"] for a in audit] == [f"api_key:{api.key_id}"]
        assert secret not in str(audit[0]["details"])
    finally:
        await api.http.delete(f"{ENDPOINTS}/{endpoint_id}", headers=api.headers)


async def test_refused_urls_and_unknown_events_are_422_naming_the_field(api: Api) -> None:
    for url in (
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/hook",
        "http://10.1.2.3/hook",
        "ftp://127.0.0.1/hook",
        "http://user:pw@127.0.0.1/hook",
    ):
        r = await api.http.post(ENDPOINTS, json={"url": url, "events": ["*"]}, headers=api.headers)
        assert (
            r.status_code == 422 and r.json()["error"] == "WebhookUrlRefused" and r.json()["param"] == "url"
        ), url
    r = await api.http.post(
        ENDPOINTS, json={"url": "http://127.0.0.1:9/h", "events": ["payment.lost"]}, headers=api.headers
    )
    assert r.status_code == 422 and r.json()["param"] == "events"
    r = await api.http.post(
        ENDPOINTS, json={"url": "http://127.0.0.1:9/h", "events": []}, headers=api.headers
    )
    assert r.status_code == 422 and r.json()["param"] == "events"


async def test_outside_dev_loopback_is_refused_at_creation(api_factory: ApiFactory) -> None:
    async with api_factory(portalpay_env="prod") as api:
        for url in (
            "https://127.0.0.1:8443/hook",
            "https://0x7f000001/hook",
            "https://[::1]/hook",
            "http://example.com/h",
        ):
            r = await api.http.post(ENDPOINTS, json={"url": url, "events": ["*"]}, headers=api.headers)
            assert r.status_code == 422 and r.json()["param"] == "url", (url, r.text)


async def test_a_key_without_the_scope_is_403(api: Api) -> None:
    _, secret = await api.new_key(EVENTS_READ)
    r = await api.http.post(
        ENDPOINTS, json={"url": "http://127.0.0.1:9/h", "events": ["*"]}, headers=api.bearer(secret)
    )
    assert r.status_code == 403
    r = await api.http.get(ENDPOINTS, headers=api.bearer(secret))
    assert r.status_code == 403


async def test_rotate_delete_and_deliveries(api: Api, db_pool: asyncpg.Pool) -> None:
    made = await _create(api, "http://127.0.0.1:9/hook")
    endpoint_id = made["id"]
    r = await api.http.post(f"{ENDPOINTS}/{endpoint_id}/rotate-secret", headers=api.headers)
    assert r.status_code == 200, r.text
    rotated = r.json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != made["secret"]
    assert rotated["previous_secret_expires_at"]
    r = await api.http.get(f"{ENDPOINTS}/{endpoint_id}/deliveries", headers=api.headers)
    assert r.status_code == 200 and r.json() == {"data": [], "has_more": False}

    r = await api.http.delete(f"{ENDPOINTS}/{endpoint_id}", headers=api.headers)
    assert r.status_code == 200 and r.json() == {"id": endpoint_id, "deleted": True}
    for call in (
        api.http.delete(f"{ENDPOINTS}/{endpoint_id}", headers=api.headers),
        api.http.post(f"{ENDPOINTS}/{endpoint_id}/rotate-secret", headers=api.headers),
        api.http.get(f"{ENDPOINTS}/{endpoint_id}/deliveries", headers=api.headers),
        api.http.get(f"{ENDPOINTS}/we_nope/deliveries", headers=api.headers),
    ):
        r = await call
        assert r.status_code == 404 and r.json()["error"] == "WebhookEndpointNotFound"
    listed = (await api.http.get(ENDPOINTS, params={"limit": 100}, headers=api.headers)).json()
    assert endpoint_id not in {e["id"] for e in listed["data"]}
    actions = [
        r["action"]
        for r in await db_pool.fetch(
            "SELECT details->>'action' AS action FROM audit_events WHERE event_type = 'WEBHOOK_ENDPOINT_CHANGED'"
            " AND details->>'endpoint_id' = $1 ORDER BY id",
            endpoint_id,
        )
    ]
    assert actions == ["created", "secret_rotated", "deleted"]


async def test_redeliver_sends_the_event_again_under_the_same_webhook_id(
    api: Api, db_pool: asyncpg.Pool
) -> None:
    rec = WebhookReceiver()
    async with serve(rec.app) as base:
        made = await _create(api, f"{base}/hook")
        endpoint_id = str(made["id"])
        rec.secrets = [str(made["secret"])]
        try:
            event_id = await _event(db_pool)
            client = api.portal.harness.client
            for n in (1, 2):
                r = await api.http.post(
                    f"/api/v1/events/{event_id}/redeliver",
                    json={"endpoint_id": endpoint_id},
                    headers=api.headers,
                )
                assert r.status_code == 202 and r.json() == {
                    "event_id": event_id,
                    "endpoint_ids": [endpoint_id],
                }
                assert (await delivery_outcome(client, endpoint_id, event_id)).outcome is TryOutcome.DELIVERED
                await wait_for(lambda: _accepted(rec), _count_is(n), what=f"delivery {n}")
            # Without an endpoint: every enabled endpoint subscribed to the type.
            r = await api.http.post(f"/api/v1/events/{event_id}/redeliver", headers=api.headers)
            assert r.status_code == 202 and endpoint_id in r.json()["endpoint_ids"]
            await client.get_workflow_handle(delivery_workflow_id(endpoint_id, event_id)).result()

            deliveries = (
                await api.http.get(f"{ENDPOINTS}/{endpoint_id}/deliveries", headers=api.headers)
            ).json()
            assert [d["outcome"] for d in deliveries["data"]] == ["delivered"] * 3
            assert {d["event_id"] for d in deliveries["data"]} == {event_id}
            assert all(d["status_code"] == 204 and "body" not in d for d in deliveries["data"])
            page = (
                await api.http.get(
                    f"{ENDPOINTS}/{endpoint_id}/deliveries", params={"limit": 2}, headers=api.headers
                )
            ).json()
            assert len(page["data"]) == 2 and page["has_more"] is True
            rest = (
                await api.http.get(
                    f"{ENDPOINTS}/{endpoint_id}/deliveries",
                    params={"limit": 2, "starting_after": page["data"][-1]["id"]},
                    headers=api.headers,
                )
            ).json()
            assert len(rest["data"]) == 1 and rest["has_more"] is False

            r = await api.http.post("/api/v1/events/evt_nope/redeliver", headers=api.headers)
            assert r.status_code == 404
            r = await api.http.post(
                f"/api/v1/events/{event_id}/redeliver",
                json={"endpoint_id": "we_" + "0" * 24},
                headers=api.headers,
            )
            assert r.status_code == 404 and r.json()["param"] == "endpoint_id"
        finally:
            await api.http.delete(f"{ENDPOINTS}/{endpoint_id}", headers=api.headers)
    assert {t.webhook_id for t in rec.accepted} == {event_id}
    assert all(t.verified_with == [0] for t in rec.accepted)


async def _accepted(rec: WebhookReceiver) -> int:
    return len(rec.accepted)


def _count_is(n: int) -> Callable[[int], bool]:
    return lambda count: count == n


async def test_paging_over_endpoints_visits_each_once(api: Api) -> None:
    made = [str((await _create(api, f"http://127.0.0.1:9/hook-{n}"))["id"]) for n in range(23)]
    try:
        seen: list[str] = []
        after: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": 10}
            if after:
                params["starting_after"] = after
            page = (await api.http.get(ENDPOINTS, params=params, headers=api.headers)).json()
            seen += [e["id"] for e in page["data"]]
            if not page["has_more"]:
                break
            after = page["data"][-1]["id"]
        mine = [e for e in seen if e in set(made)]
        assert len(seen) == len(set(seen))  # nothing twice
        assert mine == list(reversed(made))  # each of ours once, newest first
    finally:
        for endpoint_id in made:
            await api.http.delete(f"{ENDPOINTS}/{endpoint_id}", headers=api.headers)


async def test_an_idempotent_create_keeps_its_answer_sealed_and_replays_the_same_secret(
    api: Api, db_pool: asyncpg.Pool
) -> None:
    """The stored answer of a create made with Idempotency-Key carries the secret shown once: it
    is kept sealed, and the replay shows the same secret byte for byte."""
    key = f"create-{uuid.uuid4().hex}"
    headers = {**api.headers, "Idempotency-Key": key}
    body = {"url": "http://127.0.0.1:9/hook", "events": ["*"]}
    first = await api.http.post(ENDPOINTS, json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = await api.http.post(ENDPOINTS, json=body, headers=headers)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.content == first.content
    secret = str(first.json()["secret"])
    raw = secret.removeprefix("whsec_")
    try:
        stored = await db_pool.fetchrow(
            "SELECT response_body, response_headers::text AS headers FROM idempotency_keys WHERE key = $1",
            key,
        )
        assert stored is not None and stored["response_body"] is not None
        kept = bytes(stored["response_body"])
        for form in (secret.encode(), raw.encode(), base64.b64decode(raw), b"whsec_"):
            assert form not in kept
        assert secret not in stored["headers"]
    finally:
        await api.http.delete(f"{ENDPOINTS}/{first.json()['id']}", headers=api.headers)
