"""SPEC §9's `canceled`: a debit withdrawn at the processor before it was sent out.

Through the real sandbox service and its signed webhook: the debit (still `processing`, its
settlement an hour away) is canceled at the processor; the payment becomes `canceled` (its history
`processing → canceled`), the invoice is open again with its balance restored, PAYMENT_CANCELED is
audited, and the follower ends. The processor settling it
afterwards is impossible (a canceled debit has no more events), and a repeated cancel changes nothing.
"""

import asyncpg
from temporalio.client import WorkflowExecutionStatus

from domain.ach_payment import ach_workflow_id
from tests.conftest import HarnessFactory
from tests.lifecycle.services import wait_for
from tests.lifecycle.stack import lifecycle_stack
from tests.lifecycle.test_test_accounts import accept_debit
from tests.support import GOOD_ACCOUNT, create_invoice
from tests.workflow.steps import audit_types, unique_email


async def test_a_debit_canceled_at_the_processor_reopens_the_invoice(
    harness_factory: HarnessFactory, db_pool: asyncpg.Pool
) -> None:
    async with lifecycle_stack(harness_factory, db_pool, sandbox_settlement_seconds=3600) as s:
        inv = await create_invoice(s.pool, amount_cents=48000, email=unique_email())
        payment_id = await accept_debit(s, inv, GOOD_ACCOUNT)
        reference = await s.pool.fetchval(
            "SELECT processor_reference FROM payments WHERE id = $1", payment_id
        )
        withdrawn = await s.processor.cancel(reference)
        assert withdrawn.status == "canceled"

        await wait_for(
            lambda: s.pool.fetchval("SELECT status FROM payments WHERE id = $1", payment_id),
            lambda status: status == "canceled",
            timeout=60,
            what="the payment canceled",
        )
        handle = s.harness.client.get_workflow_handle(ach_workflow_id(payment_id))
        await wait_for(
            lambda: handle.describe(),
            lambda d: d.status is WorkflowExecutionStatus.COMPLETED,
            timeout=60,
            what="the follower ended",
        )
        row = await s.pool.fetchrow(
            "SELECT status, balance_cents FROM invoices WHERE id = $1", inv.invoice_id
        )
        assert (row["status"], row["balance_cents"]) == ("open", 48000)
        history = await s.pool.fetch(
            "SELECT status FROM payment_status_history WHERE payment_id = $1 ORDER BY occurred_at, recorded_at",
            payment_id,
        )
        assert [h["status"] for h in history] == ["processing", "canceled"]
        assert (await audit_types(s.pool, inv.invoice_id)).count("PAYMENT_CANCELED") == 1

        # Canceling again is too late at the processor and changes nothing here.
        again = await s.processor.cancel(reference)
        assert again.status == "canceled"
        assert await s.pool.fetchval("SELECT status FROM payments WHERE id = $1", payment_id) == "canceled"
        assert (await audit_types(s.pool, inv.invoice_id)).count("PAYMENT_CANCELED") == 1
