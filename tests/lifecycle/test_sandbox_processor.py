"""The sandbox processor as a service of its own (SPEC §9), spoken to over HTTP by the real client."""

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from infra.providers.processor.client import HttpProcessorClient, ProcessorRejected, ProcessorUnavailable
from infra.webhook_signature import SIGNATURE_HEADER, verify
from sandbox_processor.app import create_processor_app
from tests.lifecycle.services import WebhookRecorder, free_port, serve, wait_for
from tests.support import GOOD_ACCOUNT, GOOD_ROUTING, test_settings

SECRET = "processor-webhook-test-secret-0123456789"


@contextlib.asynccontextmanager
async def processor(
    pool: asyncpg.Pool, webhook_url: str, port: int = 0, instance: str | None = None, **overrides: Any
) -> AsyncIterator[HttpProcessorClient]:
    settings = test_settings(
        sandbox_instance=instance or uuid.uuid4().hex,
        processor_webhook_secret=SECRET,
        processor_webhook_url=webhook_url,
        sandbox_tick_seconds=0.05,
        sandbox_webhook_retry_seconds=0.05,
        **{"sandbox_settlement_seconds": 0.5, "sandbox_late_return_seconds": 0.5, **overrides},
    )
    async with serve(create_processor_app(settings, pool), port=port) as url:
        client = HttpProcessorClient(url, timeout=5)
        try:
            yield client
        finally:
            await client.aclose()


async def _debit(
    client: HttpProcessorClient, key: str, account: str = GOOD_ACCOUNT, amount: int = 1000
) -> Any:
    return await client.debit(
        idempotency_key=key,
        amount_cents=amount,
        currency="USD",
        routing_number=GOOD_ROUTING,
        account_number=account,
        account_type="checking",
        metadata={"payment_id": f"PAY-{key}"},
    )


async def test_idempotent_debit_same_key_same_body_same_debit_other_body_409(db_pool: asyncpg.Pool) -> None:
    hooks = WebhookRecorder()
    async with serve(hooks.app) as hook_url, processor(db_pool, hook_url + "/hook") as client:
        key = uuid.uuid4().hex
        first = await _debit(client, key)
        again = await _debit(client, key)
        assert first.id == again.id and first.status == "processing"
        assert first.expected_settlement_at is not None
        with pytest.raises(ProcessorRejected) as err:
            await _debit(client, key, amount=1001)
        assert err.value.status == 409
        assert (
            await db_pool.fetchval("SELECT count(*) FROM sandbox_debits WHERE idempotency_key = $1", key) == 1
        )
        with pytest.raises(ProcessorRejected) as bad:
            await client.debit(
                idempotency_key=uuid.uuid4().hex,
                amount_cents=10,
                currency="USD",
                routing_number="011000016",
                account_number=GOOD_ACCOUNT,
                account_type="checking",
                metadata={},
            )
        assert bad.value.status == 422


@pytest.mark.parametrize(
    ("account", "reason"),
    [
        ("000111111113", "account_closed"),
        ("000222222227", "insufficient_funds"),
        ("000333333335", "debit_not_authorized"),
    ],
)
async def test_decline_accounts_are_declined_at_submission(
    db_pool: asyncpg.Pool, account: str, reason: str
) -> None:
    async with processor(db_pool, "http://127.0.0.1:9/unused") as client:
        debit = await _debit(client, uuid.uuid4().hex, account)
        assert (debit.status, debit.decline_reason, debit.accepted) == ("declined", reason, False)


async def test_each_account_reaches_its_outcome_with_signed_webhooks(db_pool: asyncpg.Pool) -> None:
    hooks = WebhookRecorder()
    async with serve(hooks.app) as hook_url, processor(db_pool, hook_url + "/hook") as client:
        settles = await _debit(client, uuid.uuid4().hex)
        fails = await _debit(client, uuid.uuid4().hex, "000444444440")
        returns = await _debit(client, uuid.uuid4().hex, "000555555553")
        wanted = {
            settles.id: ["debit.processing", "debit.settled"],
            fails.id: ["debit.processing", "debit.failed"],
        }
        wanted[returns.id] = ["debit.processing", "debit.settled", "debit.returned"]

        def seen() -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            for event in sorted(hooks.events(), key=lambda e: e["seq"]):
                out.setdefault(event["debit_id"], []).append(event["type"])
            return {k: v for k, v in out.items() if k in wanted}

        async def probe() -> dict[str, list[str]]:
            return seen()

        await wait_for(probe, lambda s: s == wanted, what="every outcome delivered")
        assert (await client.get_debit(fails.id)).return_code == "R01"
        assert (await client.get_debit(returns.id)).return_code == "R10"
        assert (await client.get_debit(settles.id)).status == "settled"
        for body, headers in hooks.received:
            verify(SECRET, headers[SIGNATURE_HEADER.lower()], body)


async def test_account_validation_and_cancel(db_pool: asyncpg.Pool) -> None:
    async with processor(db_pool, "http://127.0.0.1:9/unused", sandbox_settlement_seconds=60) as client:
        bad = await client.validate_account(routing_number=GOOD_ROUTING, account_number="000666666666")
        good = await client.validate_account(routing_number=GOOD_ROUTING, account_number=GOOD_ACCOUNT)
        assert (bad.valid, bad.reason, good.valid) == (False, "no_account", True)
        debit = await _debit(client, uuid.uuid4().hex)
        canceled = await client.cancel(debit.id)
        assert canceled.status == "canceled"
        assert (await client.cancel(debit.id)).status == "canceled"
        page = await client.events_after("0", limit=500)
        while page.has_more:
            page = await client.events_after(page.next_cursor, limit=500)
        types = [e.type for e in page.events if e.debit_id == debit.id]
        assert types == ["debit.processing", "debit.canceled"]


async def test_settled_debit_cannot_be_canceled(db_pool: asyncpg.Pool) -> None:
    async with processor(db_pool, "http://127.0.0.1:9/unused", sandbox_settlement_seconds=0) as client:
        debit = await _debit(client, uuid.uuid4().hex)
        await wait_for(lambda: client.get_debit(debit.id), lambda d: d.status == "settled", what="settlement")
        with pytest.raises(ProcessorRejected) as err:
            await client.cancel(debit.id)
        assert err.value.status == 409


async def test_webhooks_retry_until_2xx_and_a_restart_loses_nothing(db_pool: asyncpg.Pool) -> None:
    hooks = WebhookRecorder(refuse_first=3)
    port = free_port()
    instance = uuid.uuid4().hex
    async with serve(hooks.app) as hook_url:
        async with processor(
            db_pool, hook_url + "/hook", port=port, instance=instance, sandbox_settlement_seconds=1.5
        ) as client:
            debit = await _debit(client, uuid.uuid4().hex)
            assert (await client.get_debit(debit.id)).status == "processing"
        # The first process is gone before the debit comes due; a new one picks it up from the tables.
        async with processor(db_pool, hook_url + "/hook", port=port, instance=instance) as client:

            async def mine() -> list[str]:
                return [e["type"] for e in hooks.events() if e["debit_id"] == debit.id]

            types = await wait_for(mine, lambda t: "debit.settled" in t, what="settlement webhook")
        assert hooks.refused == 3
        assert sorted(types) == ["debit.processing", "debit.settled"]


async def test_dropped_and_duplicated_deliveries_by_setting(db_pool: asyncpg.Pool) -> None:
    hooks = WebhookRecorder()
    async with serve(hooks.app) as hook_url:
        async with processor(db_pool, hook_url + "/hook", sandbox_webhook_drop_rate=1.0) as client:
            dropped = await _debit(client, uuid.uuid4().hex)
            await wait_for(
                lambda: client.get_debit(dropped.id), lambda d: d.status == "settled", what="settle"
            )
        async with processor(db_pool, hook_url + "/hook", sandbox_webhook_duplicate_rate=1.0) as client:
            doubled = await _debit(client, uuid.uuid4().hex)

            async def mine() -> list[str]:
                return [e["type"] for e in hooks.events() if e["debit_id"] == doubled.id]

            await wait_for(mine, lambda t: t.count("debit.settled") == 2, what="duplicated settlement")
        assert not [e for e in hooks.events() if e["debit_id"] == dropped.id]


async def test_unreachable_processor_is_transient(db_pool: asyncpg.Pool) -> None:
    client = HttpProcessorClient(f"http://127.0.0.1:{free_port()}", timeout=1)
    try:
        with pytest.raises(ProcessorUnavailable):
            await client.get_debit("dbt_x")
    finally:
        await client.aclose()


async def test_reverse_setting_delivers_a_batch_newest_first(db_pool: asyncpg.Pool) -> None:
    hooks = WebhookRecorder()
    async with (
        serve(hooks.app) as hook_url,
        processor(
            db_pool,
            hook_url + "/hook",
            sandbox_settlement_seconds=0.3,
            sandbox_webhook_reverse=True,
        ) as client,
    ):
        debit = await _debit(client, uuid.uuid4().hex)

        async def mine() -> list[str]:
            return [e["type"] for e in hooks.events() if e["debit_id"] == debit.id]

        # Held until the debit settled, then newest first.
        assert await wait_for(mine, lambda t: len(t) == 2, what="two deliveries") == [
            "debit.settled",
            "debit.processing",
        ]
