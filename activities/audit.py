"""The audit activity: one row per event, never two, whatever the retries."""

import asyncpg
from temporalio import activity

from domain.activity_io import AuditEventInput, AuditEventRecord, LockoutRequest
from infra.stores.audit_trail import append_event


class AuditActivities:
    def __init__(self, pool: asyncpg.Pool, *, metrics: object | None = None) -> None:
        self._pool = pool
        self._metrics = metrics

    @activity.defn(name="append_audit_event")
    async def append_audit_event(self, event: AuditEventInput) -> AuditEventRecord:
        async with self._pool.acquire() as conn:
            return await append_event(conn, event)

    @activity.defn(name="record_lockout")
    async def record_lockout(self, request: LockoutRequest) -> None:
        """The lockout lives in PostgreSQL: a closed LOCKED run is invisible to id-reuse policies."""
        status = await self._pool.execute(
            "UPDATE invoices SET locked_until = $2 WHERE id = $1"
            " AND (locked_until IS NULL OR locked_until < $2)",
            request.invoice_id,
            request.locked_until,
        )
        hook = getattr(self._metrics, "locks", None)
        if callable(hook) and status.endswith(" 1"):
            hook()
