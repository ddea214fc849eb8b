"""SPEC §9's reconciliation as operators meet it: the daily `processor-reconciliation` Schedule the
worker creates, the run it starts, and the mismatch report (issue 18's blind spots).

A payment whose status differs from the processor's, where the processor is not ahead, is never
"repaired": it is reported, in the run's result and in `portalpay ops reconcile`'s table, with exit 3.
The processor here is the scripted stand-in (tools/standins/processor.py), so each status is the
test's to set; Temporal and PostgreSQL are the real ones.
"""

import contextlib
import io
import uuid
from datetime import timedelta

from rich.console import Console
from temporalio.client import (
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleOverlapPolicy,
)
from temporalio.service import RPCError

from domain.ach_payment import ReconcileReport
from starters.cli.reconcile import render_reconcile
from tests.conftest import HarnessFactory
from tests.lifecycle.conftest import insert_accepted_payment
from tests.lifecycle.services import wait_for
from tests.lifecycle.test_followed_whatever_fails import scripted_harness
from tests.support import Harness, create_invoice
from tests.workflow.steps import unique_email
from tools.standins.processor import ScriptedProcessor
from workers.schedules import ensure_reconciliation_schedule, reconcile_now
from workflows.reconciliation import SCHEDULE_ID, ProcessorReconciliationWorkflow


async def _ours_ahead_and_unknown(h: Harness, processor: ScriptedProcessor) -> tuple[str, str]:
    """Two payments the processor does not bear out: one we hold `settled` while the processor still
    says `processing`, one under a debit id the processor has never heard of."""
    ahead = await insert_accepted_payment(
        h.pool, await create_invoice(h.pool, amount_cents=6100, email=unique_email()), processor=processor
    )
    await h.pool.execute("UPDATE payments SET status = 'settled' WHERE id = $1", ahead)
    unknown = await insert_accepted_payment(
        h.pool,
        await create_invoice(h.pool, amount_cents=6200, email=unique_email()),
        debit_id=f"dbt_nobody_{uuid.uuid4().hex[:10]}",
    )
    return ahead, unknown


def _mismatches(report: ReconcileReport, *payment_ids: str) -> dict[str, tuple[str, str]]:
    return {m.payment_id: (m.ours, m.processor) for m in report.mismatches if m.payment_id in payment_ids}


async def test_a_status_that_differs_from_the_processor_is_reported_and_left_for_staff(
    harness_factory: HarnessFactory,
) -> None:
    async with scripted_harness(harness_factory) as (h, processor):
        ahead, unknown = await _ours_ahead_and_unknown(h, processor)

        report = await reconcile_now(h.client, h.task_queue)

        assert _mismatches(report, ahead, unknown) == {
            ahead: ("settled", "processing"),
            unknown: ("processing", "unknown"),
        }
        assert not {m.payment_id for m in report.repaired} & {ahead, unknown}
        # Reported, not acted on: our rows are as they were.
        statuses = await h.pool.fetch(
            "SELECT id, status FROM payments WHERE id = ANY($1::text[])", [ahead, unknown]
        )
        assert {r["id"]: r["status"] for r in statuses} == {ahead: "settled", unknown: "processing"}

        # What `portalpay ops reconcile` prints for it (it exits 3 when there are mismatches).
        printed = io.StringIO()
        render_reconcile(Console(file=printed, width=250, no_color=True), report)
        lines = printed.getvalue().splitlines()
        assert any("Status mismatches (not repaired: staff look)" in line for line in lines)
        assert any(ahead in line and "settled" in line and "processing" in line for line in lines)
        assert any(unknown in line and "unknown" in line for line in lines)
        assert "No status mismatches." not in printed.getvalue()

        # Once the processor bears ours out, the payment leaves the report.
        processor.move(f"dbt_{ahead.lower()}", "settled", publish=False)
        again = await reconcile_now(h.client, h.task_queue)
        assert _mismatches(again, ahead, unknown) == {unknown: ("processing", "unknown")}


async def test_the_daily_schedule_exists_once_and_its_run_reports_the_mismatches(
    harness_factory: HarnessFactory,
) -> None:
    async with scripted_harness(harness_factory) as (h, processor):
        ahead, unknown = await _ours_ahead_and_unknown(h, processor)
        schedule = h.client.get_schedule_handle(SCHEDULE_ID)
        with contextlib.suppress(RPCError):
            await schedule.delete()  # made by a `portalpay worker` another test started
        try:
            created = await ensure_reconciliation_schedule(h.client, h.task_queue)
            again = await ensure_reconciliation_schedule(h.client, h.task_queue)  # a second worker starting
            described = await schedule.describe()
            assert created is True and again is False
            assert [i.every for i in described.schedule.spec.intervals] == [timedelta(days=1)]
            assert described.schedule.policy.overlap is ScheduleOverlapPolicy.SKIP
            action = described.schedule.action
            assert isinstance(action, ScheduleActionStartWorkflow)
            assert action.workflow == ProcessorReconciliationWorkflow.__name__
            assert action.task_queue == h.task_queue

            await schedule.trigger()  # what the daily tick does
            described = await wait_for(
                schedule.describe,
                lambda d: bool(d.info.recent_actions),
                timeout=60,
                what="the schedule's run",
            )
        finally:
            await schedule.delete()
        started = described.info.recent_actions[-1].action
        assert isinstance(started, ScheduleActionExecutionStartWorkflow)
        assert started.workflow_id.startswith(f"{SCHEDULE_ID}-run")
        run = h.client.get_workflow_handle_for(
            ProcessorReconciliationWorkflow.run, started.workflow_id, run_id=started.first_execution_run_id
        )
        report = await run.result()
        assert _mismatches(report, ahead, unknown) == {
            ahead: ("settled", "processing"),
            unknown: ("processing", "unknown"),
        }
