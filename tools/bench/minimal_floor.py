"""The minimal floor: the same business job in the fewest Temporal steps, driven by a plain client.

Start with an Update that runs one no-op send activity (update-with-start), an Update answered in
the workflow itself (the code check needs no activity), then a no-op debit and a no-op audit
activity and completion: 3 activities and 2 Updates. Where the same-shape floor (`floor.py`) says
what PortalPay's shape costs, this says what the job could cost on this server; issue 13 asks
PortalPay for half of it. Its workflow and activities run in the floor's worker process.
"""

from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

_TIMEOUT = timedelta(seconds=15)
CODE = "123456"


@activity.defn(name="minimal_send")
async def minimal_send(channel: str) -> str:
    return channel


@activity.defn(name="minimal_debit")
async def minimal_debit(key: str) -> str:
    return key


@activity.defn(name="minimal_audit")
async def minimal_audit(event: str) -> int:
    return 0


MINIMAL_ACTIVITIES = [minimal_send, minimal_debit, minimal_audit]


@workflow.defn
class MinimalFloorWorkflow:
    @workflow.init
    def __init__(self, invoice_id: str) -> None:
        self._verified = False

    @workflow.run
    async def run(self, invoice_id: str) -> str:
        await workflow.wait_condition(lambda: self._verified)
        await workflow.execute_activity(minimal_debit, invoice_id, start_to_close_timeout=_TIMEOUT)
        await workflow.execute_activity(minimal_audit, "PAYMENT_ACCEPTED", start_to_close_timeout=_TIMEOUT)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return "PAID"

    @workflow.update
    async def send_code(self, channel: str) -> str:
        await workflow.execute_activity(minimal_send, channel, start_to_close_timeout=_TIMEOUT)
        return "AWAITING_CODE"

    @workflow.update
    def verify_code(self, code: str) -> bool:
        self._verified = code == CODE
        return self._verified


async def minimal_request_code(client: Client, workflow_id: str, task_queue: str) -> str:
    start = WithStartWorkflowOperation(
        MinimalFloorWorkflow.run,
        workflow_id,
        id=workflow_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    result: str = await client.execute_update_with_start_workflow(
        MinimalFloorWorkflow.send_code, "email", start_workflow_operation=start
    )
    return result


async def minimal_verify(client: Client, workflow_id: str) -> bool:
    result: bool = await client.get_workflow_handle(workflow_id).execute_update(
        MinimalFloorWorkflow.verify_code, CODE
    )
    return result


async def minimal_paid(client: Client, workflow_id: str) -> str:
    result: str = await client.get_workflow_handle_for(MinimalFloorWorkflow.run, workflow_id).result()
    return result
