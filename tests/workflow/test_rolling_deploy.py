"""Issue 20 finding 6: during a rolling deploy an old worker can never run the folded debit.

The folded submission (screening, debit, follower start) is scheduled under its own activity name,
`submit_screened_debit`, behind the `debit-under-own-name` patch. A worker built before the fold
registers only `submit_debit`, which would drop the screening it cannot read: given the new task it
refuses it (not registered) without running anything, and the retry is served by a new worker.
"""

import asyncio
import uuid
from datetime import timedelta

import asyncpg
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from activities.audit import AuditActivities
from activities.payer import PayerActivities
from domain.activity_io import ProcessorDebitRequest
from domain.attempt import ClientContext, PaymentReceipt, SubmitPaymentInput
from domain.channels import Channel
from domain.status import PaymentStatus
from infra.providers.delivery.console import ConsoleSender
from starters.workflow_client import AttemptGateway
from tests.support import create_invoice, test_settings
from tests.workflow.steps import bank_details, eventually
from workers.worker import WorkerDeps, build_worker
from workflows.ach_payment import AchPaymentWorkflow
from workflows.pay_invoice import PayInvoiceWorkflow

OLD_RAN: list[ProcessorDebitRequest] = []


@activity.defn(name="submit_debit")
async def old_submit_debit(request: ProcessorDebitRequest) -> PaymentReceipt:
    """The pre-fold worker's debit: it knows no screening, so it must never be handed one."""
    OLD_RAN.append(request)
    raise RuntimeError("an old worker ran the folded debit")


async def test_an_old_worker_on_the_queue_never_runs_the_folded_debit(
    temporal_client: Client, app_pool: asyncpg.Pool, processor_url: str
) -> None:
    settings = test_settings(processor_sandbox_url=processor_url)
    task_queue = f"rolling-{uuid.uuid4().hex[:12]}"
    audit_key = settings.audit_key()
    # The old build's activities (names as before the fold) and the new build's workflow code.
    old_worker = Worker(
        temporal_client,
        task_queue=task_queue,
        activities=[
            PayerActivities(
                app_pool, policy=settings.otp_policy, timers=settings.attempt_timers(), audit_key=audit_key
            ).resolve_payer,
            AuditActivities(app_pool, audit_key=audit_key).append_audit_event,
            old_submit_debit,
        ],
    )
    new_workflows = Worker(
        temporal_client, task_queue=task_queue, workflows=[PayInvoiceWorkflow, AchPaymentWorkflow]
    )
    gateway = AttemptGateway(temporal_client, app_pool, settings, task_queue=task_queue)
    inv = await create_invoice(app_pool, kind="deposit", amount_cents=20000, email=None, phone=None)
    ctx = ClientContext(actor="pytest")
    OLD_RAN.clear()

    async with new_workflows:
        async with old_worker:
            opened = await gateway.open(inv.invoice_id, ctx)
            assert opened.status is PaymentStatus.AWAITING_PAYMENT
            paying = asyncio.create_task(
                gateway.submit_payment(
                    inv.invoice_id, opened.run_id, SubmitPaymentInput(details=bank_details(), client=ctx)
                )
            )
            handle = temporal_client.get_workflow_handle(opened.workflow_id, run_id=opened.run_id)

            async def debit_refused_by_old_worker() -> list[tuple[str, int, str]]:
                desc = await handle.describe()
                return [
                    (p.activity_type.name, p.attempt, p.last_failure.application_failure_info.type)
                    for p in desc.raw_description.pending_activities
                ]

            pending = await eventually(
                debit_refused_by_old_worker,
                lambda acts: any(attempt >= 2 for _, attempt, _ in acts),
                timeout=60,
            )
            assert [name for name, _, _ in pending] == ["submit_screened_debit"], pending
            assert pending[0][2] == "NotFoundError"  # refused as not registered: nothing ran
            assert not paying.done()
            assert OLD_RAN == [], "an old worker ran the folded debit"

        # The rolling deploy goes on: the old build has left the queue and a new worker joins; the
        # same pending activity is served by it, once, at its next retry (at most the debit retry's
        # 30 s apart). While both polled, each retry went to either one, and a few in a row to the
        # old build could push the next one past any deadline. (Its own client connection, as a
        # separate process would have: the SDK refuses two workers of one task type on one queue
        # per connection.)
        new_client = await Client.connect(
            temporal_client.service_client.config.target_host,
            namespace=temporal_client.namespace,
            data_converter=temporal_client.data_converter,
        )
        console = ConsoleSender(app_pool)
        deps = WorkerDeps.from_settings(settings, app_pool, {Channel.EMAIL: console, Channel.SMS: console})
        deps.bank_fingerprint_key = uuid.uuid4().bytes
        async with build_worker(new_client, task_queue, deps, graceful_shutdown=timedelta(seconds=5)):
            paid = await asyncio.wait_for(paying, timeout=90)
        assert deps.processor is not None
        await deps.processor.aclose()

    assert paid.status is PaymentStatus.PAID
    assert OLD_RAN == []
    assert await app_pool.fetchval("SELECT count(*) FROM payments WHERE invoice_id = $1", inv.invoice_id) == 1
