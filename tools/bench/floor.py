"""The floor: a bare workflow of PortalPay's shape, driven by a plain Temporal client.

Same number of activities (resolve, 2 audits at start; send + audit; check + audit; audit + debit
+ audit), the same four Updates with one lock, the same idle-deadline wait, no-op bodies, the
default data converter. What PortalPay costs above this is its own work: PostgreSQL, the codec,
the HTTP hop, pydantic, search attributes.

`python -m tools.bench.floor --address HOST:PORT --task-queue Q` runs its worker process.
"""

import argparse
import asyncio
import contextlib
import signal
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Worker

from tools.bench.minimal_floor import MINIMAL_ACTIVITIES, MinimalFloorWorkflow

_TIMEOUT = timedelta(seconds=15)


@activity.defn(name="floor_resolve")
async def floor_resolve(invoice_id: str) -> dict[str, Any]:
    return {"invoice_id": invoice_id}


@activity.defn(name="floor_audit")
async def floor_audit(event: str) -> int:
    return 0


@activity.defn(name="floor_send")
async def floor_send(channel: str) -> str:
    return channel


@activity.defn(name="floor_check")
async def floor_check(code: str) -> bool:
    return True


@activity.defn(name="floor_debit")
async def floor_debit(key: str) -> str:
    return key


FLOOR_ACTIVITIES = [floor_resolve, floor_audit, floor_send, floor_check, floor_debit]


@workflow.defn
class FloorWorkflow:
    @workflow.init
    def __init__(self, invoice_id: str) -> None:
        self._status = "RESOLVING_PAYER"
        self._lock = asyncio.Lock()
        self._actions = 0

    @workflow.run
    async def run(self, invoice_id: str) -> str:
        await workflow.execute_activity(floor_resolve, invoice_id, start_to_close_timeout=_TIMEOUT)
        await workflow.execute_activity(floor_audit, "ATTEMPT_STARTED", start_to_close_timeout=_TIMEOUT)
        await workflow.execute_activity(floor_audit, "PAYER_RESOLVED", start_to_close_timeout=_TIMEOUT)
        self._status = "CHOOSING_CHANNEL"
        while self._status != "PAID":
            seen = self._actions
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda seen=seen: self._actions != seen, timeout=1800)  # type: ignore[misc]
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._status

    @workflow.update
    async def open_session(self) -> str:
        await workflow.wait_condition(lambda: self._status != "RESOLVING_PAYER")
        return self._status

    @workflow.update
    async def request_code(self, channel: str) -> str:
        async with self._lock:
            await workflow.execute_activity(floor_send, channel, start_to_close_timeout=_TIMEOUT)
            await workflow.execute_activity(floor_audit, "OTP_SENT", start_to_close_timeout=_TIMEOUT)
            self._status = "AWAITING_CODE"
            self._actions += 1
            return self._status

    @workflow.update
    async def verify_code(self, code: str) -> str:
        async with self._lock:
            await workflow.execute_activity(floor_check, code, start_to_close_timeout=_TIMEOUT)
            await workflow.execute_activity(floor_audit, "OTP_VERIFIED", start_to_close_timeout=_TIMEOUT)
            self._status = "AWAITING_PAYMENT"
            self._actions += 1
            return self._status

    @workflow.update
    async def submit_payment(self, account: str) -> str:
        async with self._lock:
            await workflow.execute_activity(floor_audit, "PAYMENT_SUBMITTED", start_to_close_timeout=_TIMEOUT)
            await workflow.execute_activity(floor_debit, account, start_to_close_timeout=_TIMEOUT)
            await workflow.execute_activity(floor_audit, "PAYMENT_ACCEPTED", start_to_close_timeout=_TIMEOUT)
            self._status = "PAID"
            self._actions += 1
            return self._status


def build_floor_worker(client: Client, task_queue: str, *, max_cached_workflows: int = 1000) -> Worker:
    """The settings `workers.worker.build_worker` uses, so only the work differs; both floors."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[FloorWorkflow, MinimalFloorWorkflow],
        activities=[*FLOOR_ACTIVITIES, *MINIMAL_ACTIVITIES],
        graceful_shutdown_timeout=timedelta(seconds=30),
        max_cached_workflows=max_cached_workflows,
    )


# ---- the plain client's side of one attempt ---------------------------------------------------


async def floor_open(client: Client, workflow_id: str, task_queue: str) -> str:
    start = WithStartWorkflowOperation(
        FloorWorkflow.run,
        workflow_id,
        id=workflow_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    result: str = await client.execute_update_with_start_workflow(
        FloorWorkflow.open_session, start_workflow_operation=start
    )
    return result


async def floor_request_code(client: Client, workflow_id: str) -> str:
    result: str = await client.get_workflow_handle(workflow_id).execute_update(
        FloorWorkflow.request_code, "email"
    )
    return result


async def floor_verify(client: Client, workflow_id: str) -> str:
    result: str = await client.get_workflow_handle(workflow_id).execute_update(
        FloorWorkflow.verify_code, "123456"
    )
    return result


async def floor_pay(client: Client, workflow_id: str) -> str:
    result: str = await client.get_workflow_handle(workflow_id).execute_update(
        FloorWorkflow.submit_payment, "000123456789"
    )
    return result


async def _serve(address: str, task_queue: str, max_cached: int) -> None:
    client = await Client.connect(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with build_floor_worker(client, task_queue, max_cached_workflows=max_cached):
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="The bench floor's worker process.")
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--max-cached", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(_serve(args.address, args.task_queue, args.max_cached))


if __name__ == "__main__":
    main()
