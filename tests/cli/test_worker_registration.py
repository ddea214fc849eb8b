"""Every activity the workflow calls by name is registered on the worker that `workers/worker.py` builds.

Asked the way Temporal would find out: a probe workflow schedules each name on the worker's task
queue and reports the names the worker answered "not registered" for. An unknown name proves the
probe can tell.
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.worker import Worker

from tests.support import Harness
from workflows import activity_options

NOT_REGISTERED = "NotFoundError"


@dataclass
class ProbeInput:
    task_queue: str
    names: list[str]


@workflow.defn(sandboxed=False)
class ActivityNameProbe:
    @workflow.run
    async def run(self, probe: ProbeInput) -> list[str]:
        missing = []
        for name in probe.names:
            try:
                # No arguments: a registered activity fails on them, an unregistered one is never found.
                await workflow.execute_activity(
                    name,
                    task_queue=probe.task_queue,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=RetryPolicy(maximum_attempts=1),
                )
            except ActivityError as err:
                if isinstance(err.cause, ApplicationError) and err.cause.type == NOT_REGISTERED:
                    missing.append(name)
        return missing


def activity_names_the_workflow_calls() -> list[str]:
    return sorted(
        value
        for key, value in vars(activity_options).items()
        if key.isupper() and isinstance(value, str) and not key.startswith("_")
    )


async def test_every_activity_name_is_registered_on_the_built_worker(harness: Harness) -> None:
    names = activity_names_the_workflow_calls()
    assert {"resolve_payer", "send_code", "check_code", "submit_debit", "append_audit_event"} <= set(names)
    probe_queue = f"probe-{uuid.uuid4().hex[:12]}"
    async with Worker(harness.client, task_queue=probe_queue, workflows=[ActivityNameProbe]):
        missing = await harness.client.execute_workflow(
            ActivityNameProbe.run,
            ProbeInput(task_queue=harness.task_queue, names=[*names, "no_such_activity"]),
            id=f"activity-probe-{uuid.uuid4().hex[:12]}",
            task_queue=probe_queue,
            execution_timeout=timedelta(minutes=2),
        )
    assert missing == ["no_such_activity"]
