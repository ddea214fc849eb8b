"""Schedules the worker makes sure exist at start: `processor-reconciliation`, daily (SPEC §9); with
PROCESSOR=nacha also `nacha-origination` (before each cut-off) and `nacha-inbound` (every 15
minutes) (SPEC §13)."""

import logging
import uuid
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
)

from domain.ach_files import InboundInput, OriginationInput, OriginationReport
from domain.ach_payment import ReconcileInput, ReconcileReport
from infra.nacha_config import NachaConfig
from workflows.nacha_files import (
    INBOUND_SCHEDULE_ID,
    ORIGINATION_SCHEDULE_ID,
    NachaInboundWorkflow,
    NachaOriginationWorkflow,
)
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


# The origination run starts this long before the bank's cut-off: time to write, retry an upload.
BEFORE_CUTOFF = timedelta(minutes=30)
INBOUND_EVERY = timedelta(minutes=15)


async def _create(client: Client, schedule_id: str, schedule: Schedule) -> bool:
    try:
        await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:
        return False
    log.info("created schedule %s", schedule_id)
    return True


async def ensure_nacha_schedules(client: Client, task_queue: str, config: NachaConfig) -> None:
    """`nacha-origination` on banking weekdays before the cut-off, in the bank's time zone (a Federal
    Reserve holiday finds the next banking day's effective date); `nacha-inbound` every 15 minutes."""
    start = (config.cutoff.hour * 60 + config.cutoff.minute - int(BEFORE_CUTOFF.total_seconds() // 60)) % 1440
    await _create(
        client,
        ORIGINATION_SCHEDULE_ID,
        Schedule(
            action=ScheduleActionStartWorkflow(
                NachaOriginationWorkflow.run,
                OriginationInput(),
                id=f"{ORIGINATION_SCHEDULE_ID}-run",
                task_queue=task_queue,
            ),
            spec=ScheduleSpec(
                calendars=[
                    ScheduleCalendarSpec(
                        hour=[ScheduleRange(start // 60)],
                        minute=[ScheduleRange(start % 60)],
                        day_of_week=[ScheduleRange(1, 5)],
                    )
                ],
                time_zone_name=config.cutoff_zone.key,
            ),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        ),
    )
    await _create(
        client,
        INBOUND_SCHEDULE_ID,
        Schedule(
            action=ScheduleActionStartWorkflow(
                NachaInboundWorkflow.run,
                InboundInput(),
                id=f"{INBOUND_SCHEDULE_ID}-run",
                task_queue=task_queue,
            ),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=INBOUND_EVERY)]),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        ),
    )


async def send_nacha_file_now(client: Client, task_queue: str) -> OriginationReport:
    """`portalpay nacha send-now`: one origination run now (one upload try), waited for."""
    report: OriginationReport = await client.execute_workflow(
        NachaOriginationWorkflow.run,
        OriginationInput(retry_until_sent=False),
        id=f"{ORIGINATION_SCHEDULE_ID}-manual-{uuid.uuid4().hex[:12]}",
        task_queue=task_queue,
    )
    return report
