"""Issue 20 finding 2: a debit's idempotency key is reused only for the same request, and an answer
that only says "key already used" is looked up at the processor, never recorded as a decline.

The runbook scenario (docs/operations.md): an attempt stuck in SUBMITTING is terminated; its debit
had reached the processor but the answer was never recorded. The customer pays again, from savings
instead of checking (same routing, same account number, same amount). The ledger must hold one debit,
the first payment row must take that debit's real outcome, and its webhooks must be applied.
"""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from temporalio.client import WorkflowExecutionStatus

from activities.bank_accounts import AccountScreen
from activities.debit_answers import NEVER_SENT, resolve_orphaned_debits
from activities.payments import PaymentActivities
from domain.ach_payment import ach_workflow_id
from domain.activity_io import AttemptRef, ProcessorDebitRequest
from domain.attempt import ClientContext, PaymentDetails
from domain.errors import ErrorType
from domain.policy import PaymentMethod
from domain.status import PaymentStatus
from infra.bank_accounts import debit_request_digest
from infra.providers.processor.client import HttpProcessorClient, ProcessorUnavailable
from starters.workflow_client import AttemptRefused
from tests.conftest import HarnessFactory
from tests.lifecycle.services import serve, wait_for
from tests.lifecycle.stack import Stack, lifecycle_stack
from tests.support import GOOD_ACCOUNT, GOOD_ROUTING, TestInvoice, create_invoice
from tests.workflow.steps import Attempt, audit_rows, unique_email
from workers.schedules import reconcile_now

AMOUNT = 20000  # a deposit: no code needed, the customer goes straight to payment


def savings(account: str = GOOD_ACCOUNT) -> PaymentDetails:
    return PaymentDetails(
        method=PaymentMethod.ECHECK,
        account_holder="Ada Lovelace",
        routing_number=GOOD_ROUTING,
        account_number=account,
        account_type="savings",
    )


async def stuck_submission(
    s: Stack, inv: TestInvoice, *, reached_processor: bool, age: timedelta = timedelta(minutes=10)
) -> str:
    """The payment row a terminated attempt left `submitting` (a checking debit), and, when
    `reached_processor`, the debit its last try sent before the answer was lost."""
    payment_id = f"PAY-K{uuid.uuid4().hex[:14].upper()}"
    digest = debit_request_digest(
        s.fingerprint_key,
        amount_cents=AMOUNT,
        currency="USD",
        routing_number=GOOD_ROUTING,
        account_number=GOOD_ACCOUNT,
        account_type="checking",
    )
    await s.pool.execute(
        "INSERT INTO payments (id, idempotency_key, invoice_id, customer_id, payer_contact_id, workflow_id,"
        " run_id, method, amount_cents, currency, account_holder, account_type, routing_number,"
        " account_last4, status, authorization_text, authorized_at, retain_until, request_digest, submitted_at)"
        " VALUES ($1,$1,$2,$3,$4,$5,$6,'echeck',$7,'USD','Ada Lovelace','checking',$8,$9,'submitting',"
        " 'I authorize', $10, $12, $11, $10)",
        payment_id,
        inv.invoice_id,
        inv.customer_id,
        inv.payer_contact_id,
        f"pay-invoice-{inv.invoice_id}",
        str(uuid.uuid4()),  # the terminated run
        AMOUNT,
        GOOD_ROUTING,
        GOOD_ACCOUNT[-4:],
        datetime.now(UTC) - age,
        digest,
        datetime.now(UTC) + timedelta(days=730),
    )
    if reached_processor:
        await s.processor.debit(
            idempotency_key=payment_id,
            amount_cents=AMOUNT,
            currency="USD",
            routing_number=GOOD_ROUTING,
            account_number=GOOD_ACCOUNT,
            account_type="checking",
            metadata={"payment_id": payment_id, "invoice_id": inv.invoice_id},
        )
    return payment_id


async def ledger_debits(s: Stack, invoice_id: str) -> int:
    count: int = await s.pool.fetchval(
        "SELECT count(*) FROM sandbox_debits WHERE metadata->>'invoice_id' = $1", invoice_id
    )
    return count


async def processing_events(pool: asyncpg.Pool, payment_id: str) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM events WHERE type = 'payment.processing' AND data->'object'->>'payment_id' = $1",
        payment_id,
    )
    return count


async def payment_rows(pool: asyncpg.Pool, invoice_id: str) -> dict[str, dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT id, status, decline_reason, processor_reference FROM payments WHERE invoice_id = $1",
        invoice_id,
    )
    return {r["id"]: dict(r) for r in rows}


async def test_runbook_second_attempt_from_savings_debits_once_and_the_first_debit_is_followed(
    harness_factory: HarnessFactory, db_pool: asyncpg.Pool
) -> None:
    async with lifecycle_stack(harness_factory, db_pool) as s:
        inv = await create_invoice(s.pool, kind="deposit", amount_cents=AMOUNT, email=unique_email())
        first = await stuck_submission(s, inv, reached_processor=True)

        attempt = await Attempt.open(s.harness, inv)
        with pytest.raises(AttemptRefused) as refused:
            await attempt.pay(savings())

        # The first request's debit holds the invoice: nothing is sent for the second, whose
        # customer is told another payment is being confirmed (409), not that the bank declined.
        assert refused.value.type is ErrorType.DEBIT_IN_FLIGHT
        assert (await attempt.current()).status is PaymentStatus.AWAITING_PAYMENT
        assert await ledger_debits(s, inv.invoice_id) == 1
        rows = await payment_rows(s.pool, inv.invoice_id)
        assert list(rows) == [first], rows
        assert rows[first]["status"] != "declined", "a 409 was recorded as a decline"
        assert rows[first]["processor_reference"], "the first row must own the real debit"

        # Its webhooks reach its follower, which applies them instead of crashing.
        settled = await wait_for(
            lambda: payment_rows(s.pool, inv.invoice_id),
            lambda r: r[first]["status"] == "settled",
            timeout=60,
            what="the first debit settled",
        )
        assert settled[first]["status"] == "settled"
        assert await s.pool.fetchval("SELECT status FROM invoices WHERE id = $1", inv.invoice_id) == "paid"
        follower = await s.harness.client.get_workflow_handle(ach_workflow_id(first)).describe()
        assert follower.status != WorkflowExecutionStatus.FAILED
        types = [r["event_type"] for r in await audit_rows(s.pool, inv.invoice_id)]
        assert "PAYMENT_DECLINED" not in types
        assert "PAYMENT_ACCEPTED" in types
        # SPEC §12: the accepted debit wrote its payment.processing event with the row.
        assert await processing_events(s.pool, first) == 1
        assert await ledger_debits(s, inv.invoice_id) == 1


async def test_orphaned_row_never_sent_is_closed_and_the_new_request_debits_once(
    harness_factory: HarnessFactory, db_pool: asyncpg.Pool
) -> None:
    async with lifecycle_stack(harness_factory, db_pool) as s:
        inv = await create_invoice(s.pool, kind="deposit", amount_cents=AMOUNT, email=unique_email())
        first = await stuck_submission(s, inv, reached_processor=False)

        attempt = await Attempt.open(s.harness, inv)
        paid = await attempt.pay(savings())

        assert paid.payment is not None and paid.payment.accepted
        rows = await payment_rows(s.pool, inv.invoice_id)
        assert rows[first]["status"] == "declined" and rows[first]["decline_reason"] == NEVER_SENT
        assert rows[paid.payment.payment_id]["status"] in ("processing", "settled")
        assert await ledger_debits(s, inv.invoice_id) == 1
        # SPEC §12: the accepted debit's payment.processing event, written with the row.
        assert await processing_events(s.pool, paid.payment.payment_id) == 1


async def test_a_young_orphan_may_still_be_in_flight_and_is_not_guessed(
    harness_factory: HarnessFactory, db_pool: asyncpg.Pool
) -> None:
    """Within ORPHANED_AFTER a try of the other run may still reach the processor: the customer is
    told another debit is being confirmed, and nothing is sent or closed."""
    async with lifecycle_stack(harness_factory, db_pool) as s:
        inv = await create_invoice(s.pool, kind="deposit", amount_cents=AMOUNT, email=unique_email())
        first = await stuck_submission(s, inv, reached_processor=False, age=timedelta(seconds=0))
        attempt = await Attempt.open(s.harness, inv)
        with pytest.raises(AttemptRefused) as refused:
            await attempt.pay(savings())
        assert refused.value.type is ErrorType.DEBIT_IN_FLIGHT
        rows = await payment_rows(s.pool, inv.invoice_id)
        assert rows == {first: rows[first]} and rows[first]["status"] == "submitting"
        assert await ledger_debits(s, inv.invoice_id) == 0


async def test_reconciliation_resolves_an_orphan_at_the_processor_by_its_key(
    harness_factory: HarnessFactory, db_pool: asyncpg.Pool
) -> None:
    async with lifecycle_stack(harness_factory, db_pool) as s:
        inv = await create_invoice(s.pool, kind="deposit", amount_cents=AMOUNT, email=unique_email())
        first = await stuck_submission(s, inv, reached_processor=True)
        followed: list[str] = []

        async def follow(payment_id: str) -> None:
            followed.append(payment_id)

        resolved = await resolve_orphaned_debits(
            s.pool, s.processor, s.harness.client, audit_key=s.harness.settings.audit_key(), follow=follow
        )
        assert first in resolved and followed == [first]
        rows = await payment_rows(s.pool, inv.invoice_id)
        assert rows[first]["status"] == "processing"
        invoice = await s.pool.fetchrow(
            "SELECT status, balance_cents FROM invoices WHERE id = $1", inv.invoice_id
        )
        assert (invoice["status"], invoice["balance_cents"]) == ("pending", 0)
        assert await ledger_debits(s, inv.invoice_id) == 1


def _processor_answering_key_in_use(found: dict[str, Any] | None) -> FastAPI:
    """A processor whose POST says only "this key is in use" (409); GET by key shows what it holds."""
    app = FastAPI()

    @app.post("/v1/debits")
    async def debit() -> JSONResponse:
        return JSONResponse(
            {
                "error": {
                    "code": "idempotency_key_in_use",
                    "message": "a request with this key is in progress",
                }
            },
            status_code=409,
        )

    @app.get("/v1/debits")
    async def by_key(idempotency_key: str) -> dict[str, Any]:
        return {"data": [found] if found is not None and idempotency_key == found["key"] else []}

    return app


def _debit_request(inv_id: str = "INV-KEY") -> ProcessorDebitRequest:
    now = datetime.now(UTC)
    return ProcessorDebitRequest(
        attempt=AttemptRef(
            workflow_id=f"pay-invoice-{inv_id}",
            run_id=str(uuid.uuid4()),
            invoice_id=inv_id,
            customer_id="C-KEY",
            payer_contact_id="CT-KEY",
        ),
        amount_cents=AMOUNT,
        currency="USD",
        details=savings(),
        client=ClientContext(),
        authorization_text="I authorize",
        authorized_at=now,
        otp_audit_event_id=None,
    )


async def test_a_key_in_use_answer_is_looked_up_never_a_decline(db_pool: asyncpg.Pool) -> None:
    held = {
        "key": "PAY-KEYINUSE",
        "id": "dbt_held",
        "status": "processing",
        "amount_cents": AMOUNT,
        "currency": "USD",
        "decline_reason": None,
        "return_code": None,
        "metadata": {},
        "expected_settlement_at": None,
    }
    async with serve(_processor_answering_key_in_use(held)) as url:
        processor = HttpProcessorClient(url, timeout=5)
        screen = AccountScreen(db_pool, processor, b"k" * 32, audit_key=b"a" * 32)
        payments = PaymentActivities(db_pool, processor, screen, audit_key=b"a" * 32)
        answer = await payments._ask_processor(_debit_request(), "PAY-KEYINUSE", "PAY-KEYINUSE")
        assert (answer.accepted, answer.reference, answer.decline_reason) == (True, "dbt_held", None)

        # Nothing under the key yet: still unknown, so the activity retries; never a decline.
        with pytest.raises(ProcessorUnavailable):
            await payments._ask_processor(_debit_request(), "PAY-OTHERKEY", "PAY-OTHERKEY")
        await processor.aclose()


async def test_ops_reconcile_resolves_an_orphan_and_its_debit_is_followed_to_settlement(
    harness_factory: HarnessFactory, db_pool: asyncpg.Pool
) -> None:
    """`portalpay ops reconcile` (and its Schedule): the orphan's real debit is found by its key,
    the row takes it, and its follower applies the processor's webhooks."""
    async with lifecycle_stack(harness_factory, db_pool) as s:
        inv = await create_invoice(s.pool, kind="deposit", amount_cents=AMOUNT, email=unique_email())
        first = await stuck_submission(s, inv, reached_processor=True)
        report = await reconcile_now(s.harness.client, s.harness.task_queue)
        assert first in report.orphans_resolved
        await wait_for(
            lambda: payment_rows(s.pool, inv.invoice_id),
            lambda r: r[first]["status"] == "settled",
            timeout=60,
            what="the orphan's debit settled",
        )
        assert await s.pool.fetchval("SELECT status FROM invoices WHERE id = $1", inv.invoice_id) == "paid"
        assert await ledger_debits(s, inv.invoice_id) == 1


async def test_an_orphan_whose_debit_was_canceled_is_recorded_canceled_with_its_event(
    harness_factory: HarnessFactory, db_pool: asyncpg.Pool
) -> None:
    async with lifecycle_stack(harness_factory, db_pool) as s:
        inv = await create_invoice(s.pool, kind="deposit", amount_cents=AMOUNT, email=unique_email())
        first = await stuck_submission(s, inv, reached_processor=True)
        debit = await s.processor.find_debit(first)
        assert debit is not None
        assert (await s.processor.cancel(debit.id)).status == "canceled"

        async def follow(payment_id: str) -> None:
            raise AssertionError("a canceled debit has nothing to follow")

        resolved = await resolve_orphaned_debits(
            s.pool, s.processor, s.harness.client, audit_key=s.harness.settings.audit_key(), follow=follow
        )
        assert first in resolved
        assert (await payment_rows(s.pool, inv.invoice_id))[first]["status"] == "canceled"
        assert await s.pool.fetchval("SELECT status FROM invoices WHERE id = $1", inv.invoice_id) == "open"
        assert (
            await s.pool.fetchval(
                "SELECT count(*) FROM events WHERE type = 'payment.canceled'"
                " AND data->'object'->>'payment_id' = $1",
                first,
            )
            == 1
        )
