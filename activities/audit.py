"""The audit activity: one row per event, never two, whatever the retries."""

import asyncpg
from temporalio import activity

from domain.activity_io import AuditEventInput, AuditEventRecord, LockoutRequest
from infra.stores.audit_trail import append_event
from infra.stores.invoices import extend_lockout


class AuditActivities:
    def __init__(self, pool: asyncpg.Pool, *, audit_key: bytes, metrics: object | None = None) -> None:
        self._pool = pool
        self._audit_key = audit_key
        self._metrics = metrics

    @activity.defn(name="append_audit_event")
    async def append_audit_event(self, event: AuditEventInput) -> AuditEventRecord:
        async with self._pool.acquire() as conn:
            return await append_event(conn, event, key=self._audit_key)

    @activity.defn(name="record_lockout")
    async def record_lockout(self, request: LockoutRequest) -> None:
        """The lockout lives in PostgreSQL: a closed LOCKED run is invisible to id-reuse policies."""
        moved = await extend_lockout(self._pool, request.invoice_id, request.locked_until)
        hook = getattr(self._metrics, "locks", None)
        if callable(hook) and moved:
            hook()
