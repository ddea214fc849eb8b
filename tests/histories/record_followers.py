"""Record the payment followers' histories `tests/test_replay.py` replays (SPEC §9, issue 20).
Run on demand, never by the suite:

    .venv/bin/python -m tests.histories.record_followers              # every scenario not recorded yet
    .venv/bin/python -m tests.histories.record_followers ach_payment_settled   # just one (overwrites it)

into tests/histories/followers/ (the attempt's histories stay at the top level).

Each scenario runs `AchPaymentWorkflow` (and, for the restart, `ProcessorReconciliationWorkflow`)
on a time-skipping test server, so a 60-day return window passes in seconds, against an embedded
PostgreSQL and a scripted processor (`tools/standins/processor.py`), with the test codec key. Like
`record.py`: never re-record an existing file to make a failing replay pass (docs/versioning.md).
"""

import asyncio
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from domain.ach_payment import AchPaymentInput, ProcessorEvent, ReconcileInput, ach_workflow_id
from domain.channels import Channel
from infra.converter import build_data_converter
from infra.db import create_pool, embedded_database_url, migrate_url
from infra.providers.delivery.base import CodeSender, DeliveryReceipt, OutboundMessage, PermanentDeliveryError
from infra.providers.delivery.console import ConsoleSender
from tests.lifecycle.conftest import STAFF_EMAIL, insert_accepted_payment, lifecycle_config
from tests.support import BIN_DIR, create_invoice, test_settings
from tools.standins.processor import ScriptedProcessor
from workers.worker import WorkerDeps, build_worker
from workflows.ach_payment import AchPaymentWorkflow
from workflows.reconciliation import ProcessorReconciliationWorkflow
from workflows.search_attributes import ALL_KEYS

HERE = Path(__file__).parent / "followers"  # kept apart: tests/test_versioning.py patches the attempt


class BouncesStaff:
    """Email that refuses the staff address for good (SendGrid's 400), and delivers the rest."""

    def __init__(self, inner: CodeSender) -> None:
        self.inner = inner
        self.name = "bounces-staff"

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        if message.to == STAFF_EMAIL:
            raise PermanentDeliveryError("sendgrid: HTTP 400", provider=self.name, provider_code="400")
        return await self.inner.send(message)

    async def aclose(self) -> None:
        return None


@dataclass
class Follow:
    env: WorkflowEnvironment
    pool: asyncpg.Pool
    processor: ScriptedProcessor
    task_queue: str

    async def payment(self, *, expected_in: timedelta = timedelta(days=3)) -> str:
        inv = await create_invoice(self.pool, email=f"payer-{uuid.uuid4().hex[:8]}@example.com")
        return await insert_accepted_payment(
            self.pool, inv, processor=self.processor, expected_settlement_at=datetime.now(UTC) + expected_in
        )

    async def start(
        self, payment_id: str, *events: ProcessorEvent
    ) -> WorkflowHandle[AchPaymentWorkflow, object]:
        handle = await self.env.client.start_workflow(
            AchPaymentWorkflow.run,
            AchPaymentInput(payment_id=payment_id),
            id=ach_workflow_id(payment_id),
            task_queue=self.task_queue,
            start_signal="processor_event" if events else None,
            start_signal_args=list(events[:1]),
        )
        for event in events[1:]:
            await handle.signal(AchPaymentWorkflow.processor_event, event)
        return handle


def _debit(payment_id: str) -> str:
    return f"dbt_{payment_id.lower()}"


async def ach_payment_settled(f: Follow) -> list[WorkflowHandle]:  # type: ignore[type-arg]
    p = await f.payment()
    handle = await f.start(p, f.processor.move(_debit(p), "settled", payment_id=p))
    await handle.result()
    return [handle]


async def ach_payment_failed(f: Follow) -> list[WorkflowHandle]:  # type: ignore[type-arg]
    p = await f.payment()
    handle = await f.start(p, f.processor.move(_debit(p), "failed", "R01", payment_id=p))
    await handle.result()
    return [handle]


async def ach_payment_returned_late(f: Follow) -> list[WorkflowHandle]:  # type: ignore[type-arg]
    p = await f.payment()
    handle = await f.start(p, f.processor.move(_debit(p), "settled", payment_id=p))
    await f.env.sleep(timedelta(days=59))
    await handle.signal(AchPaymentWorkflow.processor_event, f.processor.move(_debit(p), "returned", "R10"))
    await handle.result()
    return [handle]


async def ach_payment_duplicate_and_out_of_order(f: Follow) -> list[WorkflowHandle]:  # type: ignore[type-arg]
    p = await f.payment()
    processing = f.processor.move(_debit(p), "processing", payment_id=p)
    settled = f.processor.move(_debit(p), "settled", payment_id=p)
    returned = f.processor.move(_debit(p), "returned", "R02", payment_id=p)
    handle = await f.start(p, returned, returned, settled, processing, settled)
    await handle.result()
    return [handle]


async def ach_payment_notice_bounces(f: Follow) -> list[WorkflowHandle]:  # type: ignore[type-arg]
    p = await f.payment()
    handle = await f.start(p, f.processor.move(_debit(p), "failed", "R01", payment_id=p))
    await handle.result()
    return [handle]


async def ach_payment_processor_outage(f: Follow) -> list[WorkflowHandle]:  # type: ignore[type-arg]
    p = await f.payment(expected_in=timedelta(hours=1))
    f.processor.move(_debit(p), "settled")  # the webhook was lost
    f.processor.outage(60)
    handle = await f.start(p)
    await handle.result()
    return [handle]


async def ach_payment_overdue_alert(f: Follow) -> list[WorkflowHandle]:  # type: ignore[type-arg]
    p = await f.payment(expected_in=timedelta(hours=1))
    handle = await f.start(p)
    await f.env.sleep(timedelta(days=6))
    f.processor.move(_debit(p), "settled")
    await handle.result()
    return [handle]


async def ach_payment_restarted_by_reconcile(f: Follow) -> list[WorkflowHandle]:  # type: ignore[type-arg]
    p = await f.payment()
    first = await f.start(p)
    await asyncio.sleep(1)
    await first.terminate("gone, as the runbook once said")
    f.processor.move(_debit(p), "settled", publish=False)  # and no webhook or feed says so
    reconcile = await f.env.client.start_workflow(
        ProcessorReconciliationWorkflow.run,
        ReconcileInput(),
        id=f"reconcile-{uuid.uuid4().hex[:8]}",
        task_queue=f.task_queue,
    )
    await reconcile.result()
    latest = await f.env.client.get_workflow_handle(ach_workflow_id(p)).describe()
    restarted = f.env.client.get_workflow_handle(ach_workflow_id(p), run_id=latest.run_id)
    assert latest.run_id != first.result_run_id
    report = await reconcile.result()
    assert p in report.followers_restarted and p in {m.payment_id for m in report.repaired}
    for _ in range(150):  # the repair reaches the restarted follower
        if await f.pool.fetchval("SELECT status FROM payments WHERE id = $1", p) == "settled":
            break
        await asyncio.sleep(0.2)
    await f.env.sleep(timedelta(days=61))  # the return window closes
    await restarted.result()
    return [restarted, reconcile]


SCENARIOS: dict[str, Callable[[Follow], Awaitable[list[WorkflowHandle]]]] = {  # type: ignore[type-arg]
    f.__name__: f
    for f in (
        ach_payment_settled,
        ach_payment_failed,
        ach_payment_returned_late,
        ach_payment_duplicate_and_out_of_order,
        ach_payment_notice_bounces,
        ach_payment_processor_outage,
        ach_payment_overdue_alert,
        ach_payment_restarted_by_reconcile,
    )
}
FILE_NAMES = {
    "ach_payment_restarted_by_reconcile": [
        "ach_payment_restarted_by_reconcile",
        "reconciliation_restarts_a_follower",
    ]
}


async def record(names: list[str]) -> None:
    settings = test_settings()
    dsn = embedded_database_url(Path(tempfile.mkdtemp(prefix="portalpay-record-pg-")))
    await migrate_url(dsn)
    pool = await create_pool(dsn)
    try:
        console = ConsoleSender(pool)
        for name in names:
            # A fresh server per scenario: its clock starts at today, like the payment rows.
            env = await WorkflowEnvironment.start_time_skipping(
                test_server_existing_path=str(BIN_DIR / "temporal-test-server"),
                data_converter=build_data_converter(settings.codec_key_ring()),
            )
            await env.client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace=env.client.namespace,
                    search_attributes={
                        k.name: IndexedValueType.ValueType(k.indexed_value_type.value) for k in ALL_KEYS
                    },
                )
            )
            processor = ScriptedProcessor()
            email: CodeSender = BouncesStaff(console) if name == "ach_payment_notice_bounces" else console
            deps = WorkerDeps(
                pool=pool,
                senders={Channel.EMAIL: email, Channel.SMS: console},
                otp_hmac_key=b"otp-hmac-record-key",
                audit_key=settings.audit_key(),
                lifecycle=lifecycle_config(),
                processor=processor,
            )
            task_queue = f"record-{uuid.uuid4().hex[:8]}"
            try:
                async with build_worker(env.client, task_queue, deps, graceful_shutdown=timedelta(seconds=5)):
                    handles = await asyncio.wait_for(
                        SCENARIOS[name](Follow(env, pool, processor, task_queue)), timeout=300
                    )
                    for file_name, handle in zip(FILE_NAMES.get(name, [name]), handles, strict=True):
                        history = await handle.fetch_history()
                        (HERE / f"{file_name}.json").write_text(history.to_json() + "\n")
                        print(f"{file_name}: {len(history.events)} events")
            finally:
                await env.shutdown()
    finally:
        await pool.close()


def main() -> None:
    names = sys.argv[1:] or [n for n in SCENARIOS if not (HERE / f"{n}.json").exists()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        sys.exit(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
    asyncio.run(record(names))


if __name__ == "__main__":
    main()
