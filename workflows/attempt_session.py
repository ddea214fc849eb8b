"""The attempt's state and the small rules every `PayInvoiceWorkflow` handler shares: which
status allows what, the payer it resolved, its reference for activities, and publishing a status
(search attributes for operators, current details in words).

One state object, built when the run starts; `pay_invoice.py` tells the attempt's story on top.
"""

import asyncio
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.activity_io import AttemptRef
    from domain.attempt import CancelInput, PayerResolution, PayInvoiceInput, PaymentReceipt
    from domain.attempt_clock import AttemptClock
    from domain.audit import AuditEventType
    from domain.policy import AttemptTimers
    from domain.status import PaymentStatus
    from workflows import search_attributes as sa
    from workflows.attempt_audit import AttemptAudit
    from workflows.attempt_refusals import invalid_state
    from workflows.attempt_view import waiting_for
    from workflows.otp_progress import OtpProgress


class AttemptSession:
    def __init__(self, input: PayInvoiceInput) -> None:
        self._input = input
        self._status = PaymentStatus.RESOLVING_PAYER
        # The starter sets PaymentStatus and StatusSince when it starts the run.
        self._published_status = PaymentStatus.RESOLVING_PAYER
        self._lock = asyncio.Lock()
        self._payer: PayerResolution | None = None
        # Until resolution the clock only serves the query; no deadline runs before it.
        self._clock = AttemptClock(AttemptTimers())
        self._otp_required: bool | None = None
        self._otp = OtpProgress()
        self._screen_seq = 0
        self._refusal: ApplicationError | None = None
        self._reason: str | None = None
        self._last_action_at = workflow.now()
        self._cancel: CancelInput | None = None
        self._payment: PaymentReceipt | None = None
        self._audit = AttemptAudit(input.invoice_id)

    def _deadline(self) -> datetime | None:
        return self._clock.expiry_deadline(
            self._status,
            last_action_at=self._last_action_at,
            verified_at=self._otp.verified_at,
            otp_required=self._otp_required,
        )

    def _touch(self) -> None:
        self._last_action_at = workflow.now()

    def _refuse_if_cancelling(self) -> None:
        if self._cancel is not None:
            raise invalid_state("the attempt is being cancelled", self._status)

    def _require_status(self, *allowed: PaymentStatus) -> None:
        if self._status not in allowed:
            raise invalid_state(f"not allowed while the attempt is {self._status.value}", self._status)

    def _require_payer(self) -> PayerResolution:
        if self._payer is None:
            raise invalid_state("the payer is not resolved yet", self._status)
        return self._payer

    def _ref(self) -> AttemptRef:
        payer = self._require_payer()
        info = workflow.info()
        return AttemptRef(
            workflow_id=info.workflow_id,
            run_id=info.run_id,
            invoice_id=self._input.invoice_id,
            customer_id=payer.customer_id,
            payer_contact_id=payer.payer_contact_id,
        )

    def _set_status(self, status: PaymentStatus) -> None:
        self._status = status
        self._publish()

    def _publish(self) -> None:
        """One search-attribute upsert per status change, carrying everything that changed."""
        if self._status is not self._published_status:
            first = self._published_status is PaymentStatus.RESOLVING_PAYER
            workflow.upsert_search_attributes(sa.status_updates(self._status, self._payer if first else None))
            self._published_status = self._status
        workflow.set_current_details(self._waiting_for())

    def _waiting_for(self) -> str:
        return waiting_for(self._status, self._otp, self._clock, self._otp_required, self._reason)

    async def _record(self, event_type: AuditEventType, **fields: Any) -> Any:
        """Append one audit row; retried until the database answers (never a small attempt count)."""
        return await self._audit.append(event_type, **fields)

    async def _record_quietly(self, event_type: AuditEventType, **fields: Any) -> None:
        """For signal handlers: a failed audit must never fail the attempt (or a debit in flight)."""
        try:
            await self._audit.append(event_type, **fields)
        except ActivityError:
            workflow.logger.error("could not record %s; the attempt carries on", event_type.value)
