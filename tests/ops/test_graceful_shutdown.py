"""SIGTERM to `portalpay worker` lets the activity in flight finish, then the process exits 0.

No hook in production code: the test holds the audit chain's advisory lock (the one
`append_event` takes to serialise a chain), so the worker's audit activity is provably in
flight, blocked inside PostgreSQL, when SIGTERM arrives. The lock is released a second later;
the activity must complete once (first attempt, no retry), the process must exit 0 within the
graceful timeout, and a restarted worker must carry the attempt on with no duplicate audit rows.
"""

import asyncio
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from domain.attempt import AttemptState, ClientContext
from domain.status import PaymentStatus
from infra.stores.audit_trail import chain_ok, fetch_trail
from starters.workflow_client import AttemptGateway
from tests.ops.cli_process import PORTALPAY, cli_env, invoice_with_unique_contacts
from tests.support import test_settings as settings_for_tests

GRACE_SECONDS = 15
CTX = ClientContext(actor="pytest-shutdown")


async def wait_for(predicate: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def start_worker(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        PORTALPAY, "worker", env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )


async def audit_in_flight(handle: WorkflowHandle) -> bool:  # type: ignore[type-arg]
    try:
        desc = await handle.describe()
    except RPCError:
        return False
    return any(
        p.activity_type.name == "append_audit_event"
        and p.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        for p in desc.raw_description.pending_activities
    )


async def test_sigterm_lets_the_in_flight_activity_finish_and_a_restart_carries_on(
    temporal_client: Client, db_pool: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    task_queue = f"shutdown-{uuid.uuid4().hex[:10]}"
    env = cli_env(
        temporal_client,
        database_url,
        tmp_path,
        TEMPORAL_TASK_QUEUE=task_queue,
        WORKER_GRACEFUL_SHUTDOWN_SECONDS=str(GRACE_SECONDS),
    )
    gateway = AttemptGateway(temporal_client, db_pool, settings_for_tests(), task_queue=task_queue)
    inv = await invoice_with_unique_contacts(db_pool)
    processes: list[asyncio.subprocess.Process] = []
    tasks: list[asyncio.Task[AttemptState]] = []
    try:
        await _shutdown_then_restart(env, tmp_path, gateway, database_url, inv.invoice_id, processes, tasks)
    finally:
        for task in tasks:
            task.cancel()
        for proc in processes:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    trail = await fetch_trail(db_pool, inv.invoice_id)
    assert [row["event_type"] for row in trail] == ["ATTEMPT_STARTED", "PAYER_RESOLVED"]
    assert await chain_ok(db_pool, inv.invoice_id, key=settings_for_tests().audit_key())


async def _shutdown_then_restart(
    env: dict[str, str],
    tmp_path: Path,
    gateway: AttemptGateway,
    database_url: str,
    invoice_id: str,
    processes: list[asyncio.subprocess.Process],
    tasks: list[asyncio.Task[AttemptState]],
) -> None:
    handle = gateway.handle(invoice_id)
    lock_conn = await asyncpg.connect(database_url)
    chain_lock = lock_conn.transaction()
    await chain_lock.start()
    await lock_conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"invoice:{invoice_id}")
    worker = await start_worker(env, tmp_path)
    processes.append(worker)
    opening = asyncio.create_task(gateway.open(invoice_id, CTX))
    tasks.append(opening)
    try:
        await wait_for(lambda: audit_in_flight(handle), 30, "the audit activity to start")
        worker.send_signal(signal.SIGTERM)
        exited = asyncio.create_task(worker.communicate())
        done, _ = await asyncio.wait({exited}, timeout=1.0)
        assert not done, "the worker quit with an activity in flight"
    finally:
        await chain_lock.commit()  # releases the advisory lock: the activity can finish
        await lock_conn.close()

    started = time.monotonic()
    _, err = await asyncio.wait_for(exited, GRACE_SECONDS + 5)
    assert worker.returncode == 0, err.decode()[-2000:]
    assert time.monotonic() - started < GRACE_SECONDS
    assert not await audit_in_flight(handle)

    events = (await handle.fetch_history()).events
    audit_starts = [
        e.activity_task_started_event_attributes.attempt
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    completed = [e for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED]
    assert audit_starts == [1, 1] and len(completed) == 2  # resolve_payer, then the blocked audit
    assert not any(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED for e in events)
    assert not opening.done()  # nothing polls the task queue until the restart

    restarted = await start_worker(env, tmp_path)
    processes.append(restarted)
    try:
        state = await asyncio.wait_for(opening, 60)
        assert state.status is PaymentStatus.CHOOSING_CHANNEL
    finally:
        restarted.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(restarted.communicate(), GRACE_SECONDS + 5)
    assert restarted.returncode == 0, err.decode()[-2000:]
