"""Lifecycle fixtures: a worker on the time-skipping server with the lifecycle's settings, and a
payment row as the attempt leaves it when the processor accepts the debit."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.settlement import LifecycleConfig
from domain.channels import Channel
from infra.bank_accounts import bank_fingerprint
from infra.providers.delivery.console import ConsoleSender
from tests.support import GOOD_ACCOUNT, GOOD_ROUTING, TestInvoice, test_settings
from tools.standins.processor import ScriptedProcessor
from workers.worker import WorkerDeps, build_worker

STAFF_EMAIL = "staff-notify@example.com"
FINGERPRINT_KEY = b"bank-fingerprint-test-key"


def pay_link(invoice_id: str) -> str:
    return f"http://portal.test/pay/fresh-link-for-{invoice_id}"


def lifecycle_config(**overrides: object) -> LifecycleConfig:
    values: dict[str, object] = {"staff_notify_email": STAFF_EMAIL, "pay_link": pay_link}
    values.update(overrides)
    return LifecycleConfig(**values)  # type: ignore[arg-type]


@dataclass
class SkippingLifecycle:
    env: WorkflowEnvironment
    pool: asyncpg.Pool
    task_queue: str
    # The processor's truth: an event changes a payment only when this bears it out.
    processor: ScriptedProcessor


@pytest.fixture
async def skipping_lifecycle(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool
) -> AsyncIterator[SkippingLifecycle]:
    console = ConsoleSender(db_pool)
    processor = ScriptedProcessor()
    deps = WorkerDeps(
        pool=db_pool,
        senders={Channel.EMAIL: console, Channel.SMS: console},
        otp_hmac_key=b"otp-hmac-test-key",
        audit_key=test_settings().audit_key(),
        lifecycle=lifecycle_config(),
        processor=processor,
    )
    task_queue = f"life-{uuid.uuid4().hex[:12]}"
    worker = build_worker(time_skipping_env.client, task_queue, deps, graceful_shutdown=timedelta(seconds=5))
    async with worker:
        yield SkippingLifecycle(time_skipping_env, db_pool, task_queue, processor)


async def insert_accepted_payment(
    pool: asyncpg.Pool,
    inv: TestInvoice,
    *,
    account_number: str = GOOD_ACCOUNT,
    debit_id: str | None = None,
    expected_settlement_at: datetime | None = None,
    payment_id: str | None = None,
    processor: ScriptedProcessor | None = None,
) -> str:
    """The payment row and invoice as an accepted debit leaves them: processing, invoice pending."""
    payment_id = payment_id or f"PAY-T{uuid.uuid4().hex[:14].upper()}"
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        amount = await conn.fetchval("SELECT amount_cents FROM invoices WHERE id = $1", inv.invoice_id)
        await conn.execute(
            "INSERT INTO payments (id, idempotency_key, invoice_id, customer_id, payer_contact_id, workflow_id,"
            " run_id, method, amount_cents, currency, account_holder, account_type, routing_number,"
            " account_last4, status, processor_reference, authorization_text, authorized_at, retain_until,"
            " bank_fingerprint, expected_settlement_at)"
            " VALUES ($1,$2,$3,$4,$5,$6,'run','echeck',$7,'USD','Test Holder','checking',$8,$9,'processing',"
            " $10,'I authorize',$11,$12,$13,$14)",
            payment_id,
            f"key-{payment_id}",
            inv.invoice_id,
            inv.customer_id,
            inv.payer_contact_id,
            f"pay-invoice-{inv.invoice_id}",
            amount,
            GOOD_ROUTING,
            account_number[-4:],
            debit_id or f"dbt_{payment_id.lower()}",
            now,
            now + timedelta(days=730),
            # Salted per payment: tests share one database and must not see each other's blocklist.
            bank_fingerprint(FINGERPRINT_KEY + payment_id.encode(), GOOD_ROUTING, account_number),
            expected_settlement_at or now + timedelta(days=3),
        )
        await conn.execute(
            "UPDATE invoices SET status = 'pending', balance_cents = 0 WHERE id = $1", inv.invoice_id
        )
    if processor is not None:
        processor.open(debit_id or f"dbt_{payment_id.lower()}", amount)
    return payment_id
