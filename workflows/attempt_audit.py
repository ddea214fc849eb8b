"""The attempt's audit rows as the workflow asks for them: who, which chain, which key.

Event keys are `<workflow id>/<run id>/<seq>`: stable under replay and activity retry, so the
idempotent append writes each row once. The append retries until the database answers: an
attempt must never stop halfway because an audit write gave up (SPEC §2, issue 10 finding 6).
"""

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.activity_io import AuditEventInput, AuditEventRecord
    from domain.attempt import ClientContext, PayerResolution
    from domain.audit import AuditEventType
    from domain.channels import Channel
    from workflows import activity_options as opts


class AttemptAudit:
    def __init__(self, invoice_id: str) -> None:
        self._invoice_id = invoice_id
        self._payer: PayerResolution | None = None
        self._seq = 0

    def resolved(self, payer: PayerResolution) -> None:
        self._payer = payer

    async def append(
        self,
        event_type: AuditEventType,
        *,
        client: ClientContext | None = None,
        actor: str | None = None,
        channel: Channel | None = None,
        destination: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEventRecord:
        info = workflow.info()
        payer = self._payer
        self._seq += 1
        ctx = client or ClientContext(actor=actor or "system")
        if actor is not None:
            ctx = ctx.model_copy(update={"actor": actor})
        event = AuditEventInput(
            event_key=f"{info.workflow_id}/{info.run_id}/{self._seq:04d}",
            event_type=event_type,
            invoice_id=self._invoice_id,
            customer_id=payer.customer_id if payer else None,
            payer_contact_id=payer.payer_contact_id if payer else None,
            workflow_id=info.workflow_id,
            run_id=info.run_id,
            channel=channel,
            destination=destination,
            client=ctx,
            details=details or {},
            occurred_at=workflow.now(),
        )
        record: AuditEventRecord = await workflow.execute_activity(
            opts.APPEND_AUDIT_EVENT,
            event,
            result_type=AuditEventRecord,
            start_to_close_timeout=opts.DATABASE_TIMEOUT,
            schedule_to_close_timeout=opts.MUST_FINISH_WITHIN,
            retry_policy=opts.DATABASE_RETRY,
            summary=f"audit {event_type.value}",
        )
        return record
