"""From the company's API call to its webhook receiver (SPEC §12): an invoice put through
`/api/v1` writes `invoice.created` in the same transaction, the relay starts its delivery, and
the receiver verifies it with `standardwebhooks`; a change writes `invoice.updated`."""

import asyncio
import dataclasses
import uuid

import asyncpg

from domain.webhooks import TryOutcome
from infra.webhook_address import AddressRules
from infra.webhook_settings import WebhookConfig
from tests.api_v1.conftest import ApiFactory
from tests.lifecycle.services import serve
from tests.webhooks.conftest import FAST_RETRIES
from tests.webhooks.support import delivery_outcome
from tools.standins.webhook_receiver import WebhookReceiver
from workers.webhook_relay_loop import run_webhook_relay
from workers.worker import WorkerDeps


def _fast(deps: WorkerDeps) -> WorkerDeps:
    deps.webhooks = dataclasses.replace(
        WebhookConfig(address_rules=AddressRules(dev=True)), retry_delays_seconds=FAST_RETRIES
    )
    return deps


async def test_an_invoice_put_through_the_api_reaches_the_receiver_signed(
    api_factory: ApiFactory, db_pool: asyncpg.Pool
) -> None:
    rec = WebhookReceiver(down=True)  # down at first: the event waits in its delivery, not lost
    suffix = uuid.uuid4().hex[:10]
    async with serve(rec.app) as base, api_factory(wrap_deps=_fast) as api:
        harness = api.portal.harness
        stop = asyncio.Event()
        relay = asyncio.create_task(
            run_webhook_relay(
                harness.app_pool or harness.pool, harness.client, harness.task_queue, every=0.2, stop=stop
            )
        )
        r = await api.http.post(
            "/api/v1/webhook-endpoints",
            json={"url": f"{base}/hook", "events": ["invoice.created", "invoice.updated"]},
            headers=api.headers,
        )
        assert r.status_code == 201, r.text
        endpoint_id, secret = r.json()["id"], r.json()["secret"]
        rec.secrets = [secret]
        try:
            r = await api.http.put(
                f"/api/v1/customers/C-{suffix}", json={"name": "Webhook Movers"}, headers=api.headers
            )
            assert r.status_code == 201, r.text
            invoice = {
                "customer_external_id": f"C-{suffix}",
                "number": f"W-{suffix}",
                "kind": "invoice",
                "amount_cents": 12345,
                "currency": "USD",
            }
            r = await api.http.put(f"/api/v1/invoices/I-{suffix}", json=invoice, headers=api.headers)
            assert r.status_code == 201, r.text
            r = await api.http.put(
                f"/api/v1/invoices/I-{suffix}", json={**invoice, "amount_cents": 22345}, headers=api.headers
            )
            assert r.status_code == 200, r.text
            written = [
                (row["id"], row["type"])
                for row in await db_pool.fetch(
                    "SELECT id, type FROM events WHERE type LIKE 'invoice.%' AND data->'object'->>'external_id' = $1"
                    " ORDER BY seq",
                    f"I-{suffix}",
                )
            ]
            assert [t for _, t in written] == ["invoice.created", "invoice.updated"]
            rec.down = False
            outcomes = [
                await delivery_outcome(harness.client, endpoint_id, event_id) for event_id, _ in written
            ]
        finally:
            stop.set()
            await relay
            await api.http.delete(f"/api/v1/webhook-endpoints/{endpoint_id}", headers=api.headers)

    assert [o.outcome for o in outcomes] == [TryOutcome.DELIVERED] * 2
    assert rec.delivered_ids() == {event_id: 1 for event_id, _ in written}
    bodies = {e["id"]: e for e in rec.events()}
    created = bodies[written[0][0]]
    assert created["type"] == "invoice.created" and created["data"]["object"]["external_id"] == f"I-{suffix}"
    assert bodies[written[1][0]]["data"]["object"]["amount_cents"] == 22345
    assert all(t.verified_with == [0] for t in rec.accepted)
