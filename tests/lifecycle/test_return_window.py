"""Days-long waits of the payment lifecycle on the time-skipping server (SPEC §9).

A settled payment returned on day 59 reopens the invoice; on day 61 the workflow has ended and a
late event is recorded for staff but changes nothing.
"""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from domain.ach_payment import AchPaymentInput, AchStatus, ProcessorEvent, ach_workflow_id
from domain.channels import Channel
from infra.providers.delivery.console import ConsoleSender
from infra.providers.processor.client import HttpProcessorClient
from sandbox_processor.app import create_processor_app
from tests.lifecycle.conftest import STAFF_EMAIL, SkippingLifecycle, insert_accepted_payment, lifecycle_config
from tests.lifecycle.services import serve, wait_for
from tests.support import GOOD_ACCOUNT, GOOD_ROUTING, create_invoice, outbox_messages, test_settings
from tests.workflow.steps import audit_rows, unique_email
from workers.worker import WorkerDeps, build_worker
from workflows.ach_payment import AchPaymentWorkflow

pytestmark = pytest.mark.timeskipping


def event(w: SkippingLifecycle, kind: str, payment_id: str, code: str | None = None) -> ProcessorEvent:
    """The processor's debit moves to `kind`, and this is the event it publishes about it."""
    return w.processor.move(f"dbt_{payment_id.lower()}", kind, code, payment_id=payment_id)


async def _payment(pool: asyncpg.Pool, payment_id: str) -> asyncpg.Record:
    row: asyncpg.Record = await pool.fetchrow(
        "SELECT p.status, p.return_code, i.status AS invoice_status, i.balance_cents, i.amount_cents"
        " FROM payments p JOIN invoices i ON i.id = p.invoice_id WHERE p.id = $1",
        payment_id,
    )
    return row


async def test_settled_payment_returned_on_day_59_reopens_the_invoice(
    skipping_lifecycle: SkippingLifecycle,
) -> None:
    w = skipping_lifecycle
    inv = await create_invoice(w.pool, amount_cents=48000, email=unique_email())
    payment_id = await insert_accepted_payment(
        w.pool, inv, account_number="000555555553", processor=w.processor
    )
    handle = await w.env.client.start_workflow(
        AchPaymentWorkflow.run,
        AchPaymentInput(payment_id=payment_id),
        id=ach_workflow_id(payment_id),
        task_queue=w.task_queue,
        start_signal="processor_event",
        start_signal_args=[event(w, "settled", payment_id)],
    )
    row = await wait_for(
        lambda: _payment(w.pool, payment_id), lambda r: r["status"] == "settled", what="settled"
    )
    assert (row["invoice_status"], row["balance_cents"]) == ("paid", 0)

    await w.env.sleep(timedelta(days=59))
    assert (await handle.query(AchPaymentWorkflow.status)).status is AchStatus.SETTLED
    await handle.signal(AchPaymentWorkflow.processor_event, event(w, "returned", payment_id, "R10"))
    outcome = await handle.result()
    assert (outcome.status, outcome.return_code, outcome.window_closed) == (AchStatus.RETURNED, "R10", False)

    row = await _payment(w.pool, payment_id)
    assert (row["status"], row["return_code"]) == ("returned", "R10")
    assert (row["invoice_status"], row["balance_cents"]) == ("open", 48000)
    rows = await audit_rows(w.pool, inv.invoice_id)
    types = [r["event_type"] for r in rows]
    assert types == ["PAYMENT_SETTLED", "PAYMENT_RETURNED", "BANK_ACCOUNT_BLOCKED"]
    returned = rows[1]
    assert returned["payer_contact_id"] == inv.payer_contact_id
    assert returned["details"]["return_code"] == "R10"
    assert returned["details"]["return_meaning"] == "customer advises not authorized"
    assert returned["details"]["flagged_for_staff"] is True
    assert (
        await w.pool.fetchval(
            "SELECT return_code FROM blocked_bank_accounts WHERE payment_id = $1", payment_id
        )
        == "R10"
    )
    staff = await outbox_messages(w.pool, STAFF_EMAIL)
    assert any(inv.invoice_id in m["subject"] and "R10" in m["subject"] for m in staff)
    payer = await outbox_messages(w.pool, inv.email or "")
    assert len(payer) == 1 and "did not go through" in payer[0]["body"]
    # R10: the account holder disputes the debit; no fresh pay link goes out.
    assert "/pay/" not in payer[0]["body"]


async def test_day_61_the_window_has_closed_and_a_late_return_changes_nothing(
    skipping_lifecycle: SkippingLifecycle,
) -> None:
    w = skipping_lifecycle
    inv = await create_invoice(w.pool, amount_cents=1500, email=unique_email())
    payment_id = await insert_accepted_payment(w.pool, inv, processor=w.processor)
    handle = await w.env.client.start_workflow(
        AchPaymentWorkflow.run,
        AchPaymentInput(payment_id=payment_id),
        id=ach_workflow_id(payment_id),
        task_queue=w.task_queue,
        start_signal="processor_event",
        start_signal_args=[event(w, "settled", payment_id)],
    )
    first = await handle.result()  # time skips to the end of the 60-day window
    assert (first.status, first.window_closed) == (AchStatus.SETTLED, True)
    await w.env.sleep(timedelta(days=1))

    late = event(w, "returned", payment_id, "R01")
    again = await w.env.client.start_workflow(
        AchPaymentWorkflow.run,
        AchPaymentInput(payment_id=payment_id),
        id=ach_workflow_id(payment_id),
        task_queue=w.task_queue,
        start_signal="processor_event",
        start_signal_args=[late],
    )
    second = await again.result()
    assert (second.status, second.window_closed) == (AchStatus.SETTLED, True)
    row = await _payment(w.pool, payment_id)
    assert (row["status"], row["invoice_status"], row["balance_cents"]) == ("settled", "paid", 0)
    rows = await audit_rows(w.pool, inv.invoice_id)
    assert [r["event_type"] for r in rows] == ["PAYMENT_SETTLED", "PROCESSOR_EVENT_LATE"]
    assert rows[1]["details"]["processor_event_id"] == late.id
    assert rows[1]["details"]["changed"] is False
    assert not await outbox_messages(w.pool, inv.email or "")


async def test_no_news_by_the_expected_date_the_workflow_asks_the_processor(
    time_skipping_env: Any, db_pool: asyncpg.Pool
) -> None:
    env = time_skipping_env
    settings = test_settings(
        processor_webhook_secret="unused-secret-0123456789abcdef0123",
        processor_webhook_url="http://127.0.0.1:9/nowhere",
        sandbox_instance=uuid.uuid4().hex,
        sandbox_settlement_seconds=0.2,
        sandbox_tick_seconds=0.05,
        sandbox_webhook_drop_rate=1.0,
    )
    async with serve(create_processor_app(settings, db_pool)) as url:
        processor = HttpProcessorClient(url, timeout=5)
        console = ConsoleSender(db_pool)
        deps = WorkerDeps(
            pool=db_pool,
            senders={Channel.EMAIL: console, Channel.SMS: console},
            otp_hmac_key=b"otp",
            audit_key=settings.audit_key(),
            processor=processor,
            lifecycle=lifecycle_config(status_check_seconds=6 * 3600),
        )
        task_queue = f"life-{uuid.uuid4().hex[:12]}"
        async with build_worker(env.client, task_queue, deps, graceful_shutdown=timedelta(seconds=5)):
            inv = await create_invoice(db_pool, email=unique_email())
            payment_id = f"PAY-P{uuid.uuid4().hex[:14].upper()}"
            debit = await processor.debit(
                idempotency_key=payment_id,
                amount_cents=125000,
                currency="USD",
                routing_number=GOOD_ROUTING,
                account_number=GOOD_ACCOUNT,
                account_type="checking",
                metadata={"payment_id": payment_id},
            )
            await insert_accepted_payment(
                db_pool,
                inv,
                payment_id=payment_id,
                debit_id=debit.id,
                expected_settlement_at=datetime.now(UTC) + timedelta(days=2),
            )
            await wait_for(
                lambda: processor.get_debit(debit.id), lambda d: d.status == "settled", what="settled"
            )
            handle = await env.client.start_workflow(
                AchPaymentWorkflow.run,
                AchPaymentInput(payment_id=payment_id),
                id=ach_workflow_id(payment_id),
                task_queue=task_queue,
            )
            await wait_for(
                lambda: _payment(db_pool, payment_id), lambda r: r["status"] == "processing", what="loaded"
            )
            await env.sleep(timedelta(days=1))
            assert (await _payment(db_pool, payment_id))[
                "status"
            ] == "processing"  # not asked before the date
            await env.sleep(timedelta(days=1, minutes=1))
            row = await wait_for(
                lambda: _payment(db_pool, payment_id), lambda r: r["status"] == "settled", what="asked"
            )
            assert (row["invoice_status"], row["balance_cents"]) == ("paid", 0)
            history = await db_pool.fetchval(
                "SELECT event_id FROM payment_status_history WHERE payment_id = $1 AND status = 'settled'",
                payment_id,
            )
            assert history == f"poll:{debit.id}:settled"
            await handle.terminate("test over")
        await processor.aclose()
