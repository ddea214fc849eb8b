"""Signed deliveries end to end (SPEC §12): a real worker and relay, Temporal and PostgreSQL, and a
receiver on loopback that verifies every request with the `standardwebhooks` package."""

import json

import asyncpg

from domain.events import EventType
from domain.webhooks import TryOutcome
from infra.stores import webhooks as store
from infra.webhook_address import AddressRules
from tests.lifecycle.services import serve, wait_for
from tests.webhooks.conftest import StackFactory
from tests.webhooks.support import delivery_outcome, tries
from tools.standins.webhook_receiver import WebhookReceiver


async def test_a_receiver_down_for_a_while_gets_each_event_exactly_once(
    webhook_stack_factory: StackFactory, receiver: tuple[WebhookReceiver, str], db_pool: asyncpg.Pool
) -> None:
    rec, url = receiver
    rec.down = True
    async with webhook_stack_factory() as stack:
        endpoint_id, secret = await stack.endpoint(url)
        rec.secrets = [secret]
        events = [await stack.event(EventType.PAYMENT_SETTLED, n=n) for n in range(5)]

        async def failed_tries() -> int:
            return len([t for t in await tries(stack.pool, endpoint_id) if t["outcome"] == "failed"])

        # Down long enough that every event failed at least twice, then up.
        await wait_for(failed_tries, lambda n: n >= 2 * len(events), timeout=60, what="failed tries")
        rec.down = False
        outcomes = [await delivery_outcome(stack.client, endpoint_id, e) for e in events]

    assert [o.outcome for o in outcomes] == [TryOutcome.DELIVERED] * len(events)
    assert all(o.tries >= 2 for o in outcomes)
    # Exactly once as the receiver sees it, each signature good, the body the event itself.
    assert rec.delivered_ids() == {e: 1 for e in events}
    for entry in rec.accepted:
        assert entry.verified_with == [0]
        body = json.loads(entry.body)
        assert body["id"] == entry.webhook_id and body["type"] == "payment.settled"
        assert set(body) == {"id", "type", "created_at", "data"} and "object" in body["data"]
    for event_id in events:
        recorded = await tries(db_pool, endpoint_id, event_id)
        assert [t["outcome"] for t in recorded][-1] == "delivered"
        assert {t["outcome"] for t in recorded[:-1]} == {"failed"}
        assert [t["attempt"] for t in recorded] == list(range(1, len(recorded) + 1))
        assert all(t["status_code"] == 503 and t["error"] == "HTTP 503" for t in recorded[:-1])
    dispatched = await db_pool.fetchval(
        "SELECT count(*) FROM events WHERE id = ANY($1::text[]) AND dispatched_at IS NOT NULL", events
    )
    assert dispatched == len(events)
    # The endpoint is healthy again: no longer counted as failing.
    endpoint = await store.get_endpoint(db_pool, endpoint_id)
    assert endpoint is not None and endpoint.disabled_at is None and endpoint.failing_since is None


async def test_a_secret_rotation_signs_with_both_until_the_old_one_expires(
    webhook_stack_factory: StackFactory, receiver: tuple[WebhookReceiver, str], db_pool: asyncpg.Pool
) -> None:
    rec, url = receiver
    async with webhook_stack_factory() as stack:
        endpoint_id, old = await stack.endpoint(url)
        rec.secrets = [old]
        before = await stack.event()
        assert (await delivery_outcome(stack.client, endpoint_id, before)).outcome is TryOutcome.DELIVERED

        rec.down = True
        during = await stack.event()
        await wait_for(lambda: tries(db_pool, endpoint_id, during), bool, what="a failed try")
        async with stack.pool.acquire() as conn:
            new = await store.rotate_secret(conn, stack.box, endpoint_id)
        assert new is not None and new != old and new.startswith("whsec_")
        # The company deploys the new secret while the receiver is down; the retry verifies.
        rec.secrets = [old, new]
        rec.down = False
        assert (await delivery_outcome(stack.client, endpoint_id, during)).outcome is TryOutcome.DELIVERED
        after = await stack.event()
        assert (await delivery_outcome(stack.client, endpoint_id, after)).outcome is TryOutcome.DELIVERED

        # The overlap is over (24 h in real life): only the new secret signs.
        await db_pool.execute(
            "UPDATE webhook_endpoints SET previous_secret_expires_at = now() WHERE id = $1", endpoint_id
        )
        later = await stack.event()
        assert (await delivery_outcome(stack.client, endpoint_id, later)).outcome is TryOutcome.DELIVERED

    by_id = {t.webhook_id: t for t in rec.accepted}
    assert by_id[before].verified_with == [0]
    assert (
        by_id[during].verified_with == [0, 1]
        and len(by_id[during].headers["webhook-signature"].split(" ")) == 2
    )
    assert by_id[after].verified_with == [0, 1]
    assert (
        by_id[later].verified_with == [1] and len(by_id[later].headers["webhook-signature"].split(" ")) == 1
    )
    assert rec.delivered_ids() == {before: 1, during: 1, after: 1, later: 1}


async def test_410_disables_the_endpoint_at_once(
    webhook_stack_factory: StackFactory, receiver: tuple[WebhookReceiver, str], db_pool: asyncpg.Pool
) -> None:
    rec, url = receiver
    rec.answer_status = 410
    async with webhook_stack_factory() as stack:
        endpoint_id, secret = await stack.endpoint(url)
        rec.secrets = [secret]
        first = await stack.event()
        outcome = await delivery_outcome(stack.client, endpoint_id, first)
        assert outcome.outcome is TryOutcome.ENDPOINT_GONE and outcome.tries == 1
        endpoint = await store.get_endpoint(db_pool, endpoint_id)
        assert endpoint is not None and not endpoint.enabled and "410" in (endpoint.disabled_reason or "")

        # A later event is not sent to a disabled endpoint at all.
        second = await stack.event()
        await wait_for(
            lambda: db_pool.fetchval("SELECT dispatched_at FROM events WHERE id = $1", second),
            lambda v: v is not None,
            what="the relay to pass the second event",
        )
    assert [t["status_code"] for t in await tries(db_pool, endpoint_id)] == [410]
    assert len(rec.tries) == 1


async def test_a_redirect_to_loopback_is_not_followed(
    webhook_stack_factory: StackFactory, receiver: tuple[WebhookReceiver, str], db_pool: asyncpg.Pool
) -> None:
    rec, url = receiver
    inner = WebhookReceiver()
    async with serve(inner.app) as inner_base, webhook_stack_factory(retries=(0.2,)) as stack:
        rec.redirect_to = f"{inner_base}/hook"
        endpoint_id, secret = await stack.endpoint(url)
        rec.secrets = inner.secrets = [secret]
        event_id = await stack.event()
        outcome = await delivery_outcome(stack.client, endpoint_id, event_id)
    assert outcome.outcome is TryOutcome.FAILED and outcome.tries == 2
    assert [(t["status_code"], t["error"]) for t in await tries(db_pool, endpoint_id)] == [
        (307, "redirect not followed")
    ] * 2
    assert inner.tries == []


async def test_the_address_is_checked_again_on_every_try(
    webhook_stack_factory: StackFactory, receiver: tuple[WebhookReceiver, str], db_pool: asyncpg.Pool
) -> None:
    """An endpoint stored earlier (or under other rules) is refused on the try, before any byte is sent."""
    rec, url = receiver
    async with webhook_stack_factory(retries=(0.2,), address_rules=AddressRules(dev=False)) as stack:
        endpoint_id, secret = await stack.endpoint(url.replace("http://", "https://"))
        rec.secrets = [secret]
        event_id = await stack.event()
        outcome = await delivery_outcome(stack.client, endpoint_id, event_id)
    assert outcome.outcome is TryOutcome.FAILED and outcome.tries == 2
    errors = [t["error"] for t in await tries(db_pool, endpoint_id)]
    assert errors == ["address refused: the host 127.0.0.1 resolves to a loopback address"] * 2
    assert rec.tries == []


async def test_a_receiver_slower_than_the_deadline_is_a_failed_try(
    webhook_stack_factory: StackFactory, receiver: tuple[WebhookReceiver, str], db_pool: asyncpg.Pool
) -> None:
    rec, url = receiver
    rec.hang_seconds, rec.hang_tries = 3.0, 1
    async with webhook_stack_factory(retries=(0.2,), try_timeout_seconds=0.5) as stack:
        endpoint_id, secret = await stack.endpoint(url)
        rec.secrets = [secret]
        event_id = await stack.event()
        outcome = await delivery_outcome(stack.client, endpoint_id, event_id)
    # The first answer came too late (a 2xx after the deadline is not delivered); the retry is fast.
    assert outcome.outcome is TryOutcome.DELIVERED and outcome.tries == 2
    recorded = await tries(db_pool, endpoint_id)
    assert [(t["outcome"], t["status_code"], t["error"]) for t in recorded] == [
        ("failed", None, "no answer within 0.5 s"),
        ("delivered", 204, None),
    ]
    assert recorded[0]["duration_ms"] < 2500
