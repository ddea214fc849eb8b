"""The processor webhook on the portal, attacked and replayed (SPEC §9): signature checked on the raw
bytes first, stale timestamps refused, each event stored once, order and repeats harmless."""

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from domain.ach_payment import ProcessorEvent
from infra.webhook_signature import SIGNATURE_HEADER, sign
from starters.portal.app import build_portal_app
from tests.conftest import HarnessFactory
from tests.lifecycle.conftest import insert_accepted_payment, lifecycle_config
from tests.lifecycle.services import wait_for
from tests.support import Harness, create_invoice
from tests.workflow.steps import audit_rows, unique_email
from tools.standins.processor import ScriptedProcessor

SECRET = "portal-webhook-test-secret-0123456789ab"
PATH = "/webhooks/processor/sandbox"


@dataclass
class Intake:
    harness: Harness
    http: httpx.AsyncClient
    processor: ScriptedProcessor  # the processor's truth the follower checks each event against

    @property
    def pool(self) -> asyncpg.Pool:
        return self.harness.pool

    async def post(
        self, event: ProcessorEvent, *, secret: str = SECRET, t: int | None = None
    ) -> httpx.Response:
        body = json.dumps(event.model_dump(mode="json")).encode()
        return await self.http.post(
            PATH,
            content=body,
            headers={SIGNATURE_HEADER: sign(secret, body, timestamp=t), "Content-Type": "application/json"},
        )


@contextlib.asynccontextmanager
async def intake(harness_factory: HarnessFactory) -> AsyncIterator[Intake]:
    processor = ScriptedProcessor()

    def with_lifecycle(deps: Any) -> Any:
        deps.lifecycle = lifecycle_config()
        deps.processor = processor
        return deps

    async with harness_factory(processor_webhook_secret=SECRET, wrap_deps=with_lifecycle) as h:
        app = build_portal_app(h.settings, h.client, h.pool, task_queue=h.task_queue)
        transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as http:
            yield Intake(h, http, processor)


def event(kind: str, payment_id: str | None, debit_id: str, code: str | None = None) -> ProcessorEvent:
    return ProcessorEvent(
        id=f"evt_{uuid.uuid4().hex}",
        type=f"debit.{kind}",
        debit_id=debit_id,
        payment_id=payment_id,
        status=kind,
        return_code=code,
        occurred_at=datetime.now(UTC),
    )


async def _state(pool: asyncpg.Pool, payment_id: str) -> tuple[str, str, int]:
    row = await pool.fetchrow(
        "SELECT p.status, i.status AS inv, i.balance_cents FROM payments p JOIN invoices i ON i.id = p.invoice_id"
        " WHERE p.id = $1",
        payment_id,
    )
    return (row["status"], row["inv"], row["balance_cents"])


async def _payment(pool: asyncpg.Pool, processor: ScriptedProcessor | None = None) -> tuple[Any, str, str]:
    inv = await create_invoice(pool, amount_cents=99900, email=unique_email())
    payment_id = await insert_accepted_payment(pool, inv, account_number="000123456780", processor=processor)
    debit_id = f"dbt_{payment_id.lower()}"
    return inv, payment_id, debit_id


async def test_bad_signature_and_stale_timestamp_are_refused_before_parsing(
    harness_factory: HarnessFactory,
) -> None:
    async with intake(harness_factory) as w:
        _, payment_id, debit_id = await _payment(w.pool)
        forged = event("settled", payment_id, debit_id)
        assert (await w.post(forged, secret="not-the-secret-000000000000000000")).status_code == 400
        assert (await w.post(forged, t=int(time.time()) - 301)).status_code == 400
        assert (await w.post(forged, t=int(time.time()) + 301)).status_code == 400
        garbage = await w.http.post(PATH, content=b"{not json", headers={SIGNATURE_HEADER: "t=1,v1=00"})
        assert garbage.status_code == 400
        no_header = await w.http.post(PATH, content=b"{}")
        assert no_header.status_code == 400
        # Signed but not an event: refused without a 500.
        body = b'{"hello": "world"}'
        assert (
            await w.http.post(PATH, content=body, headers={SIGNATURE_HEADER: sign(SECRET, body)})
        ).status_code == 400
        assert await w.pool.fetchval("SELECT count(*) FROM processor_events WHERE id = $1", forged.id) == 0
        assert await _state(w.pool, payment_id) == ("processing", "pending", 0)


async def test_delivered_once_a_duplicate_changes_nothing(harness_factory: HarnessFactory) -> None:
    async with intake(harness_factory) as w:
        inv, payment_id, debit_id = await _payment(w.pool, w.processor)
        w.processor.move(debit_id, "settled")
        settled = event("settled", payment_id, debit_id)
        first = await w.post(settled)
        assert (first.status_code, first.json()["status"]) == (200, "delivered")
        await wait_for(lambda: _state(w.pool, payment_id), lambda s: s[0] == "settled", what="settled")
        assert await _state(w.pool, payment_id) == ("settled", "paid", 0)
        again = await w.post(settled)
        assert (again.status_code, again.json()["status"]) == (200, "duplicate")
        rows = await audit_rows(w.pool, inv.invoice_id)
        assert [r["event_type"] for r in rows] == ["PAYMENT_SETTLED"]
        assert await w.pool.fetchval("SELECT count(*) FROM processor_events WHERE id = $1", settled.id) == 1
        # SPEC §12: the effect wrote its events once, though the event came twice.
        kinds = await w.pool.fetch(
            "SELECT type FROM events WHERE data->'object'->>'payment_id' = $1 OR data->'object'->>'id' = $2"
            " ORDER BY seq",
            payment_id,
            inv.invoice_id,
        )
        assert [k["type"] for k in kinds] == ["payment.settled", "invoice.paid"]


async def test_reversed_order_never_moves_the_status_back(harness_factory: HarnessFactory) -> None:
    async with intake(harness_factory) as w:
        inv, payment_id, debit_id = await _payment(w.pool, w.processor)
        w.processor.move(debit_id, "returned", "R02")  # it settled, then came back
        processing = event("processing", payment_id, debit_id)
        settled = event("settled", payment_id, debit_id)
        returned = event("returned", payment_id, debit_id, "R02")
        assert (await w.post(returned)).status_code == 200
        await wait_for(lambda: _state(w.pool, payment_id), lambda s: s[0] == "returned", what="returned")
        assert (await w.post(settled)).status_code == 200
        assert (await w.post(processing)).status_code == 200

        async def applied() -> int:
            return int(
                await w.pool.fetchval(
                    "SELECT count(*) FROM processor_events WHERE payment_id = $1 AND delivered_at IS NOT NULL",
                    payment_id,
                )
            )

        await wait_for(applied, lambda n: n == 3, what="three delivered")
        handle = w.harness.client.get_workflow_handle(f"ach-payment-{payment_id}")
        await handle.result()
        assert await _state(w.pool, payment_id) == ("returned", "open", 99900)
        types = [r["event_type"] for r in await audit_rows(w.pool, inv.invoice_id)]
        # The return implied the lost settlement; the late settled and processing changed nothing.
        assert types == ["PAYMENT_SETTLED", "PAYMENT_RETURNED", "BANK_ACCOUNT_BLOCKED"]
        history = await w.pool.fetch(
            "SELECT status FROM payment_status_history WHERE payment_id = $1 ORDER BY recorded_at", payment_id
        )
        assert [h["status"] for h in history] == ["settled", "returned"]


async def test_unknown_payment_is_stored_for_reconciliation(harness_factory: HarnessFactory) -> None:
    async with intake(harness_factory) as w:
        stranger = event("settled", f"PAY-NOPE{uuid.uuid4().hex[:8]}", "dbt_nobody")
        answer = await w.post(stranger)
        assert (answer.status_code, answer.json()["status"]) == (202, "stored_unknown_payment")
        row = await w.pool.fetchrow(
            "SELECT payment_id, delivered_at FROM processor_events WHERE id = $1", stranger.id
        )
        assert row is not None and row["payment_id"] is None and row["delivered_at"] is None
        # Naming a real payment with another debit id does not touch that payment.
        _, payment_id, _ = await _payment(w.pool, w.processor)
        mismatched = event("failed", payment_id, "dbt_someone_else", "R01")
        assert (await w.post(mismatched)).status_code == 202
        assert await _state(w.pool, payment_id) == ("processing", "pending", 0)
