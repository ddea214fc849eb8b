"""`portalpay ops stuck`, the payments' half (SPEC §9): live payments whose follower is missing,
failed, or waiting on an activity that keeps failing, each with what to do.

A live payment is `processing` (or `accepted`), or `settled` inside the return window. Its follower
`ach-payment-<id>` is described one by one (bounded concurrency), not listed from visibility, which
lags: a follower terminated a moment ago would still list as running.
"""

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from domain.ach_payment import ach_workflow_id

# A pending activity on at least this attempt is "an activity that keeps failing".
FAILING_ATTEMPTS = 3
RESTART = "run `portalpay ops reconcile`: it restarts the follower, which picks up from the database"


@dataclass(frozen=True)
class StuckFollower:
    payment_id: str
    invoice_id: str
    customer_id: str
    payment_status: str
    problem: str  # missing | failed | terminated | canceled | timed_out | completed | activity_failing
    detail: str
    what_to_do: str

    def as_json(self) -> dict[str, Any]:
        return {"kind": "payment_follower", **self.__dict__, "workflow_id": ach_workflow_id(self.payment_id)}


async def live_payments(
    pool: asyncpg.Pool, *, return_window_days: int, customer_id: str | None, limit: int
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT p.id, p.invoice_id, p.customer_id, p.status FROM payments p"
        " WHERE p.processor_reference IS NOT NULL AND ($2::text IS NULL OR p.customer_id = $2) AND ("
        " p.status IN ('accepted', 'processing')"
        " OR (p.status = 'settled' AND EXISTS (SELECT 1 FROM payment_status_history h"
        "     WHERE h.payment_id = p.id AND h.status = 'settled' AND h.occurred_at > now() - $1::interval)))"
        " ORDER BY p.created_at LIMIT $3",
        timedelta(days=return_window_days),
        customer_id,
        limit,
    )
    return rows


async def find_stuck_followers(
    client: Client,
    pool: asyncpg.Pool,
    *,
    return_window_days: int,
    customer_id: str | None = None,
    limit: int = 200,
) -> list[StuckFollower]:
    rows = await live_payments(
        pool, return_window_days=return_window_days, customer_id=customer_id, limit=limit
    )
    gate = asyncio.Semaphore(8)

    async def check(row: asyncpg.Record) -> StuckFollower | None:
        async with gate:
            return await _check(client, row)

    found = await asyncio.gather(*(check(r) for r in rows))
    return [f for f in found if f is not None]


async def _check(client: Client, row: asyncpg.Record) -> StuckFollower | None:
    def stuck(problem: str, detail: str, what_to_do: str = RESTART) -> StuckFollower:
        return StuckFollower(
            payment_id=row["id"],
            invoice_id=row["invoice_id"],
            customer_id=row["customer_id"],
            payment_status=row["status"],
            problem=problem,
            detail=detail,
            what_to_do=what_to_do,
        )

    try:
        described = await client.get_workflow_handle(ach_workflow_id(row["id"])).describe()
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return stuck("missing", "no follower was ever started (or its history is past retention)")
        raise
    status = described.status
    if status is not WorkflowExecutionStatus.RUNNING:
        name = status.name.lower() if status is not None else "closed"
        return stuck(name, f"the follower's last run {name} while the payment is {row['status']}")
    for pending in described.raw_description.pending_activities:
        if pending.attempt >= FAILING_ATTEMPTS:
            failure = pending.last_failure.message if pending.HasField("last_failure") else "no message"
            return stuck(
                "activity_failing",
                f"{pending.activity_type.name} on attempt {pending.attempt}: {failure[:200]}",
                "it retries by itself without a cap: fix what it waits on (the processor, the database or"
                " a provider); nothing to restart",
            )
    return None
