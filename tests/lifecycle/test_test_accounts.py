"""Each SPEC §9 test account end to end: the sandbox processor service settles, fails or returns the
debit, signs a webhook to the portal, the payment workflow applies it, the effects land."""

import contextlib
import functools
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
from temporalio.exceptions import WorkflowAlreadyStartedError

from domain.ach_payment import AchPaymentInput, ach_workflow_id
from infra.bank_accounts import bank_fingerprint
from infra.providers.processor.client import Debit
from tests.conftest import HarnessFactory
from tests.lifecycle.conftest import FINGERPRINT_KEY, STAFF_EMAIL
from tests.lifecycle.services import wait_for
from tests.lifecycle.stack import Stack, lifecycle_stack
from tests.support import GOOD_ACCOUNT, GOOD_ROUTING, create_invoice, outbox_messages
from tests.support import TestInvoice as Invoice
from tests.workflow.steps import audit_rows, unique_email, unique_phone
from workers.schedules import reconcile_now
from workflows import search_attributes as sa
from workflows.ach_payment import AchPaymentWorkflow


async def accept_debit(s: Stack, inv: Invoice, account: str, *, no_poll: bool = False) -> str:
    """What the attempt does when the customer submits: the payment row, the debit, the workflow."""
    payment_id = f"PAY-E{uuid.uuid4().hex[:14].upper()}"
    amount = await s.pool.fetchval("SELECT amount_cents FROM invoices WHERE id = $1", inv.invoice_id)
    debit = await s.processor.debit(
        idempotency_key=f"key-{payment_id}",
        amount_cents=amount,
        currency="USD",
        routing_number=GOOD_ROUTING,
        account_number=account,
        account_type="checking",
        metadata={"payment_id": payment_id, "invoice_id": inv.invoice_id},
    )
    assert debit.status == "processing" and debit.expected_settlement_at is not None
    expected = debit.expected_settlement_at
    async with s.pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO payments (id, idempotency_key, invoice_id, customer_id, payer_contact_id, workflow_id,"
            " run_id, method, amount_cents, currency, account_holder, account_type, routing_number,"
            " account_last4, status, processor_reference, authorization_text, authorized_at, retain_until,"
            " bank_fingerprint, expected_settlement_at)"
            " VALUES ($1,$2,$3,$4,$5,'wf','run','echeck',$6,'USD','Holder','checking',$7,$8,'processing',$9,"
            " 'I authorize', now(), now() + interval '730 days', $10, $11)",
            payment_id,
            f"key-{payment_id}",
            inv.invoice_id,
            inv.customer_id,
            inv.payer_contact_id,
            amount,
            GOOD_ROUTING,
            account[-4:],
            debit.id,
            # Salted per payment: tests share one database and must not see each other's blocklist.
            bank_fingerprint(FINGERPRINT_KEY + payment_id.encode(), GOOD_ROUTING, account),
            # no_poll: the workflow would ask the processor only tomorrow, so webhooks or
            # reconciliation are the only way news arrives.
            expected + timedelta(days=1) if no_poll else expected,
        )
        await conn.execute(
            "UPDATE invoices SET status = 'pending', balance_cents = 0 WHERE id = $1", inv.invoice_id
        )
        await conn.execute(
            "INSERT INTO payment_status_history (payment_id, status, occurred_at) VALUES ($1, 'processing', now())",
            payment_id,
        )
    # As the debit activity does (activities/settlement.follow_payment): the processor's first
    # webhook may arrive between the commit above and this start and start the workflow itself by
    # signal-with-start; that run stands.
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await s.harness.client.start_workflow(
            AchPaymentWorkflow.run,
            AchPaymentInput(payment_id=payment_id),
            id=ach_workflow_id(payment_id),
            task_queue=s.harness.task_queue,
        )
    return payment_id


async def _state(pool: asyncpg.Pool, payment_id: str) -> dict[str, Any]:
    row = await pool.fetchrow(
        "SELECT p.status, p.return_code, i.status AS invoice, i.balance_cents, i.amount_cents"
        " FROM payments p JOIN invoices i ON i.id = p.invoice_id WHERE p.id = $1",
        payment_id,
    )
    return dict(row)


async def _processor_reaches(s: Stack, payment_id: str, wanted: str) -> None:
    ref: str = await s.pool.fetchval("SELECT processor_reference FROM payments WHERE id = $1", payment_id)

    def reached(debit: Debit) -> bool:
        return debit.status == wanted

    await wait_for(functools.partial(s.processor.get_debit, ref), reached, what=f"{wanted} at the processor")


async def _types(pool: asyncpg.Pool, invoice_id: str) -> list[str]:
    return [r["event_type"] for r in await audit_rows(pool, invoice_id)]


async def test_ordinary_account_settles_and_the_invoice_is_paid(
    harness_factory: HarnessFactory, db_pool: asyncpg.Pool
) -> None:
    async with lifecycle_stack(harness_factory, db_pool) as s:
        inv = await create_invoice(s.pool, email=unique_email())
        payment_id = await accept_debit(s, inv, GOOD_ACCOUNT)
        state = await wait_for(
            lambda: _state(s.pool, payment_id), lambda r: r["status"] == "settled", what="settle"
        )
        assert (state["invoice"], state["balance_cents"]) == ("paid", 0)
        assert await _types(s.pool, inv.invoice_id) == ["PAYMENT_SETTLED"]
        handle = s.harness.client.get_workflow_handle(ach_workflow_id(payment_id))
        desc = await wait_for(
            handle.describe,
            lambda d: d.typed_search_attributes.get(sa.PAYMENT_STATUS) == "SETTLED",
            what="PaymentStatus=SETTLED",
        )
        assert desc.typed_search_attributes.get(sa.PAYMENT_ID) == payment_id
        assert desc.typed_search_attributes.get(sa.INVOICE_ID) == inv.invoice_id
        assert not await outbox_messages(s.pool, inv.email or "")


async def test_r01_account_fails_reopens_the_invoice_and_tells_staff_and_the_payer_by_sms(
    harness_factory: HarnessFactory, db_pool: asyncpg.Pool
) -> None:
    async with lifecycle_stack(harness_factory, db_pool) as s:
        # Like Alan Turing in the demo: the payer has a phone only, so the news goes by SMS.
        inv = await create_invoice(s.pool, amount_cents=99900, email=None, phone=unique_phone())
        payment_id = await accept_debit(s, inv, "000444444440")
        state = await wait_for(
            lambda: _state(s.pool, payment_id), lambda r: r["status"] == "failed", what="fail"
        )
        assert (state["return_code"], state["invoice"], state["balance_cents"]) == ("R01", "open", 99900)
        await wait_for(
            lambda: outbox_messages(s.pool, inv.phone or ""), lambda m: len(m) == 1, what="payer told by SMS"
        )
        rows = await audit_rows(s.pool, inv.invoice_id)
        assert [r["event_type"] for r in rows] == ["PAYMENT_FAILED"]  # R01 does not block the account
        assert rows[0]["details"]["return_code"] == "R01"
        assert rows[0]["payer_contact_id"] == inv.payer_contact_id
        sms = (await outbox_messages(s.pool, inv.phone or ""))[0]
        assert sms["channel"] == "sms" and "insufficient funds" in sms["body"] and "/pay/" in sms["body"]
        staff = await outbox_messages(s.pool, STAFF_EMAIL)
        assert any(inv.invoice_id in m["subject"] and "R01" in m["subject"] for m in staff)
        assert (
            await s.pool.fetchval("SELECT 1 FROM blocked_bank_accounts WHERE payment_id = $1", payment_id)
            is None
        )


async def test_r10_account_settles_then_returns_and_blocks_the_account(
    harness_factory: HarnessFactory, db_pool: asyncpg.Pool
) -> None:
    async with lifecycle_stack(harness_factory, db_pool) as s:
        inv = await create_invoice(s.pool, amount_cents=48000, email=unique_email())
        payment_id = await accept_debit(s, inv, "000555555553")
        state = await wait_for(
            lambda: _state(s.pool, payment_id), lambda r: r["status"] == "returned", what="return"
        )
        assert (state["return_code"], state["invoice"], state["balance_cents"]) == ("R10", "open", 48000)
        assert await _types(s.pool, inv.invoice_id) == [
            "PAYMENT_SETTLED",
            "PAYMENT_RETURNED",
            "BANK_ACCOUNT_BLOCKED",
        ]
        history = await s.pool.fetch(
            "SELECT status FROM payment_status_history WHERE payment_id = $1 ORDER BY occurred_at, recorded_at",
            payment_id,
        )
        assert [h["status"] for h in history] == ["processing", "settled", "returned"]
        fingerprint = bank_fingerprint(FINGERPRINT_KEY + payment_id.encode(), GOOD_ROUTING, "000555555553")
        assert (
            await s.pool.fetchval(
                "SELECT return_code FROM blocked_bank_accounts WHERE fingerprint = $1", fingerprint
            )
            == "R10"
        )
        message = await wait_for(
            lambda: outbox_messages(s.pool, inv.email or ""), lambda m: len(m) == 1, what="told"
        )
        assert "/pay/" not in message[0]["body"]


async def test_all_webhooks_dropped_reconciliation_delivers_them(
    harness_factory: HarnessFactory, db_pool: asyncpg.Pool
) -> None:
    async with lifecycle_stack(harness_factory, db_pool, sandbox_webhook_drop_rate=1.0) as s:
        inv_ok = await create_invoice(s.pool, email=unique_email())
        inv_fail = await create_invoice(s.pool, email=unique_email())
        ok = await accept_debit(s, inv_ok, GOOD_ACCOUNT, no_poll=True)
        failing = await accept_debit(s, inv_fail, "000444444440", no_poll=True)
        for debit_payment, wanted in ((ok, "settled"), (failing, "failed")):
            await _processor_reaches(s, debit_payment, wanted)
        # No webhook came: our side still says processing.
        assert (await _state(s.pool, ok))["status"] == "processing"
        assert (await _state(s.pool, failing))["status"] == "processing"

        report = await reconcile_now(s.harness.client, s.harness.task_queue)
        mine = {(d.payment_id, d.type) for d in report.delivered if d.payment_id in (ok, failing)}
        # `debit.processing` is no news for a payment already processing: handled, not delivered.
        assert mine == {(ok, "debit.settled"), (failing, "debit.failed")}
        await wait_for(lambda: _state(s.pool, ok), lambda r: r["status"] == "settled", what="settled")
        await wait_for(lambda: _state(s.pool, failing), lambda r: r["status"] == "failed", what="failed")
        assert (await _state(s.pool, failing))["invoice"] == "open"

        again = await reconcile_now(s.harness.client, s.harness.task_queue)
        assert not [d for d in again.delivered if d.payment_id in (ok, failing)]
        assert not [m for m in again.mismatches if m.payment_id in (ok, failing)]
        assert await _types(s.pool, inv_ok.invoice_id) == ["PAYMENT_SETTLED"]


async def test_webhooks_in_reverse_order_end_where_the_processor_ended(
    harness_factory: HarnessFactory, db_pool: asyncpg.Pool
) -> None:
    async with lifecycle_stack(harness_factory, db_pool, sandbox_webhook_reverse=True) as s:
        inv = await create_invoice(s.pool, amount_cents=48000, email=unique_email())
        payment_id = await accept_debit(s, inv, "000555555553", no_poll=True)

        async def delivered() -> int:
            return int(
                await s.pool.fetchval(
                    "SELECT count(*) FROM processor_events WHERE payment_id = $1 AND delivered_at IS NOT NULL",
                    payment_id,
                )
            )

        await wait_for(delivered, lambda n: n == 3, what="returned, settled, processing delivered")
        await s.harness.client.get_workflow_handle(ach_workflow_id(payment_id)).result()
        state = await _state(s.pool, payment_id)
        assert (state["status"], state["return_code"], state["invoice"]) == ("returned", "R10", "open")
        assert await _types(s.pool, inv.invoice_id) == [
            "PAYMENT_SETTLED",
            "PAYMENT_RETURNED",
            "BANK_ACCOUNT_BLOCKED",
        ]
        received = await s.pool.fetch(
            "SELECT type FROM processor_events WHERE payment_id = $1 ORDER BY received_at", payment_id
        )
        assert [r["type"] for r in received] == ["debit.returned", "debit.settled", "debit.processing"]
