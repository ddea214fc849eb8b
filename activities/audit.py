"""The audit activity: one row per event, never two, whatever the retries."""

import asyncpg
from temporalio import activity

from domain.activity_io import AuditEventInput, AuditEventRecord
from infra.stores.audit_trail import append_event


class AuditActivities:
    def __init__(self, pool: asyncpg.Pool, *, audit_key: bytes) -> None:
        self._pool = pool
        self._audit_key = audit_key

    @activity.defn(name="append_audit_event")
    async def append_audit_event(self, event: AuditEventInput) -> AuditEventRecord:
        async with self._pool.acquire() as conn:
            return await append_event(conn, event, key=self._audit_key)
