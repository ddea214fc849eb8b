"""Schedules the worker makes sure exist at start: `processor-reconciliation`, daily (SPEC §9)."""

import logging
import uuid
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)

from domain.ach_payment import ReconcileInput, ReconcileReport
from workflows.reconciliation import SCHEDULE_ID, ProcessorReconciliationWorkflow
from workflows.webhook_delivery import SWEEP_SCHEDULE_ID, WebhookSweepWorkflow

log = logging.getLogger(__name__)


async def ensure_reconciliation_schedule(
    client: Client, task_queue: str, *, every: timedelta = timedelta(days=1)
) -> bool:
    """Creates the schedule unless it exists; True when this call created it."""
    try:
        await client.create_schedule(
            SCHEDULE_ID,
            Schedule(
                action=ScheduleActionStartWorkflow(
                    ProcessorReconciliationWorkflow.run,
                    ReconcileInput(),
                    id=f"{SCHEDULE_ID}-run",
                    task_queue=task_queue,
                ),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
                policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
            ),
        )
    except ScheduleAlreadyRunningError:
        return False
    log.info("created schedule %s", SCHEDULE_ID)
    return True


async def ensure_webhook_sweep_schedule(
    client: Client, task_queue: str, *, every: timedelta = timedelta(minutes=1)
) -> bool:
    """SPEC §12's safety net behind the relay loop: deliveries for events nobody dispatched."""
    try:
        await client.create_schedule(
            SWEEP_SCHEDULE_ID,
            Schedule(
                # By name: the typed form of a workflow without arguments trips mypy's overload
                # inference for every other `get_workflow_handle_for` in the program.
                action=ScheduleActionStartWorkflow(
                    WebhookSweepWorkflow.__name__, id=f"{SWEEP_SCHEDULE_ID}-run", task_queue=task_queue
                ),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
                policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
            ),
        )
    except ScheduleAlreadyRunningError:
        return False
    log.info("created schedule %s", SWEEP_SCHEDULE_ID)
    return True


async def reconcile_now(client: Client, task_queue: str) -> ReconcileReport:
    """`portalpay ops reconcile`: one run now, on the worker's task queue, waited for."""
    report: ReconcileReport = await client.execute_workflow(
        ProcessorReconciliationWorkflow.run,
        ReconcileInput(),
        id=f"{SCHEDULE_ID}-manual-{uuid.uuid4().hex[:12]}",
        task_queue=task_queue,
    )
    return report
