"""Resolving who pays, and handing the attempt the worker's OTP policy and timers.

The policy and timers travel in this activity's result so they are recorded in history and
replay the same; they are the worker's settings, never the starter's (SPEC §8, §11).
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.activity_io import AuditEventInput, ResolvePayerRequest
from domain.attempt import ClientContext, InvoiceSummary, OfferedChannel, PayerResolution
from domain.attempt_reasons import NO_CONTACT_REASON
from domain.audit import AuditEventType
from domain.channels import channels_on_file, mask_destination
from domain.errors import ErrorType
from domain.events import EventType
from domain.invoice_standing import opening_refusal
from domain.policy import AttemptTimers, InvoiceKind, OtpPolicy
from domain.status import PaymentStatus
from infra.stores.audit_trail import append_event
from infra.stores.events import record_event
from infra.stores.invoices import extend_lockout, fetch_standing
from infra.stores.payers import fetch_payer, recent_failed_checks


class PayerActivities:
    def __init__(
        self, pool: asyncpg.Pool, *, policy: OtpPolicy, timers: AttemptTimers, audit_key: bytes
    ) -> None:
        self._pool = pool
        self._policy = policy
        self._timers = timers
        self._audit_key = audit_key

    @activity.defn(name="resolve_payer")
    async def resolve_payer(self, request: ResolvePayerRequest) -> PayerResolution:
        async with self._pool.acquire() as conn:
            invoice = await fetch_standing(conn, request.invoice_id)
            refusal = opening_refusal(invoice, request.invoice_id, datetime.now(UTC))
            if refusal is not None:
                details = {}
                if refusal.retry_after is not None and refusal.locked_until is not None:
                    details = {
                        "retry_after": refusal.retry_after,
                        "locked_until": refusal.locked_until.isoformat(),
                    }
                raise ApplicationError(refusal.message, details, type=refusal.type.value, non_retryable=True)
            assert invoice is not None
            payer = await fetch_payer(conn, invoice.customer_id)
            if payer is None:
                raise ApplicationError(
                    f"customer {invoice.customer_id} has no payer or primary contact",
                    type=ErrorType.INVOICE_NOT_FOUND.value,
                    non_retryable=True,
                )
            prior_failed = await recent_failed_checks(conn, request.invoice_id, self._timers.lockout_seconds)
        destinations = {"email": payer.email, "sms": payer.phone}
        offered = [
            OfferedChannel(channel=ch, destination=mask_destination(ch, destinations[ch.value] or ""))
            for ch in channels_on_file(payer.email, payer.phone)
        ]
        resolution = PayerResolution(
            invoice=InvoiceSummary(
                invoice_id=invoice.invoice_id,
                number=invoice.number,
                amount_cents=invoice.balance_cents,
                currency=invoice.currency,
                kind=InvoiceKind(invoice.kind),
            ),
            customer_id=invoice.customer_id,
            payer_contact_id=payer.contact_id,
            payer_name=payer.name,
            designated=payer.designated,
            channels=offered,
            prior_failed_checks=prior_failed,
            policy=self._policy,
            timers=self._timers,
            contact_version=payer.version,
        )
        return await self._open(request, resolution)

    async def _open(self, request: ResolvePayerRequest, resolution: PayerResolution) -> PayerResolution:
        """The opening rows, and a lockout earned by earlier attempts, in one transaction with
        nothing else to wait for: a retry finds them by key and writes nothing twice."""
        status = resolution.opening_status
        now = datetime.now(UTC)
        rows: list[tuple[AuditEventType, dict[str, Any]]] = [
            (AuditEventType.ATTEMPT_STARTED, {}),
            (
                AuditEventType.PAYER_RESOLVED,
                {
                    "payer_name": resolution.payer_name,
                    "designated_portal_payer": resolution.designated,
                    "channels": [c.channel.value for c in resolution.channels],
                },
            ),
        ]
        if status is PaymentStatus.AWAITING_PAYMENT:
            kind = resolution.invoice.kind
            reason = resolution.policy.exemption_reason(kind, resolution.invoice.amount_cents)
            rows.append((AuditEventType.OTP_NOT_REQUIRED, {"kind": kind.value, "reason": reason}))
        elif status is PaymentStatus.NO_CONTACT_METHOD:
            rows.append((AuditEventType.NO_CONTACT_METHOD, {"reason": NO_CONTACT_REASON}))
        locked_until = None
        async with self._pool.acquire() as conn, conn.transaction():
            if status is PaymentStatus.LOCKED:
                locked_until = now + timedelta(seconds=self._timers.lockout_seconds)
                await extend_lockout(conn, request.invoice_id, locked_until)
                lock_key = f"{request.workflow_id}/{request.run_id}/open/{AuditEventType.OTP_LOCKED.value}"
                if not await conn.fetchval("SELECT 1 FROM audit_events WHERE event_key = $1", lock_key):
                    # Noted for staff (SPEC §12 `attempt.locked`), once: a retry finds the audit row.
                    await record_event(
                        conn,
                        EventType.ATTEMPT_LOCKED,
                        {
                            "invoice_id": request.invoice_id,
                            "customer_id": resolution.customer_id,
                            "workflow_id": request.workflow_id,
                            "run_id": request.run_id,
                            "failed_checks": resolution.prior_failed_checks,
                            "locked_until": locked_until.isoformat(),
                        },
                    )
                rows.append(
                    (
                        AuditEventType.OTP_LOCKED,
                        {
                            "failed_checks": resolution.prior_failed_checks,
                            "locked_until": locked_until.isoformat(),
                        },
                    )
                )
            for event_type, details in rows:
                await append_event(
                    conn,
                    AuditEventInput(
                        event_key=f"{request.workflow_id}/{request.run_id}/open/{event_type.value}",
                        event_type=event_type,
                        invoice_id=request.invoice_id,
                        customer_id=resolution.customer_id,
                        payer_contact_id=resolution.payer_contact_id,
                        workflow_id=request.workflow_id,
                        run_id=request.run_id,
                        client=request.opened_by
                        if event_type is AuditEventType.ATTEMPT_STARTED
                        else ClientContext(actor="system"),
                        details=details,
                        occurred_at=now,
                    ),
                    key=self._audit_key,
                )
        return resolution.model_copy(update={"locked_until": locked_until})
