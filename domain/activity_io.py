"""Arguments and results of the activities, shared by workflow code and activity code.

Idempotency keys are derived from stable business ids (workflow id, run id, step number) so a
retried activity finds the work it already did instead of doing it again.
"""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from domain.attempt import ClientContext, PaymentDetails
from domain.audit import AuditEventType
from domain.channels import Channel


class AttemptRef(BaseModel):
    workflow_id: str
    run_id: str
    invoice_id: str
    customer_id: str
    payer_contact_id: str


class ResolvePayerRequest(BaseModel):
    invoice_id: str
    # The run and who opened it: the opening audit rows are written with the resolution.
    workflow_id: str
    run_id: str
    opened_by: ClientContext = Field(default_factory=ClientContext)


class SendCodeRequest(BaseModel):
    attempt: AttemptRef
    send_seq: int
    channel: Channel
    ttl_seconds: int
    invoice_number: str
    # The payer contact as resolved; the send refuses if it is no longer the payer or changed.
    contact_version: datetime
    # Who asked, for the OTP_SENT row the send writes with its own record.
    client: ClientContext = Field(default_factory=ClientContext)


class SendCodeResult(BaseModel):
    channel: Channel
    destination: str  # masked
    sent_at: datetime
    expires_at: datetime
    provider: str
    provider_message_id: str | None = None


class CheckCodeRequest(BaseModel):
    attempt: AttemptRef
    send_seq: int
    check_seq: int
    code: str
    # For the audit row the check writes in its own transaction:
    client: ClientContext = Field(default_factory=ClientContext)
    channel: Channel
    destination: str  # masked
    attempts_remaining_if_wrong: int
    failed_checks_if_wrong: int
    # Set when a wrong code would exhaust the attempts: the lockout is written with the check.
    lock_until_if_wrong: datetime | None = None


class CheckCodeResult(BaseModel):
    ok: bool
    reason: str | None = None  # "mismatch", "expired", "used", "voided"
    audit_event_id: int  # OTP_VERIFIED (the payment's authentication record) or OTP_VERIFY_FAILED
    locked_until: datetime | None = None


class AuditEventInput(BaseModel):
    event_key: str
    event_type: AuditEventType
    invoice_id: str | None
    customer_id: str | None
    payer_contact_id: str | None
    workflow_id: str | None = None
    run_id: str | None = None
    channel: Channel | None = None
    destination: str | None = None  # masked only
    client: ClientContext = Field(default_factory=ClientContext)
    details: dict[str, Any] = Field(default_factory=dict)
    occurred_at: datetime

    @classmethod
    def for_attempt(
        cls,
        ref: AttemptRef,
        *,
        event_key: str,
        event_type: AuditEventType,
        client: ClientContext,
        details: dict[str, Any],
        occurred_at: datetime,
        channel: Channel | None = None,
        destination: str | None = None,
    ) -> "AuditEventInput":
        """A row an attempt's activity writes with its effect: tied to the run, the invoice and
        the payer contact the attempt resolved."""
        return cls(
            event_key=event_key,
            event_type=event_type,
            invoice_id=ref.invoice_id,
            customer_id=ref.customer_id,
            payer_contact_id=ref.payer_contact_id,
            workflow_id=ref.workflow_id,
            run_id=ref.run_id,
            channel=channel,
            destination=destination,
            client=client,
            details=details,
            occurred_at=occurred_at,
        )


class AuditEventRecord(BaseModel):
    id: int
    hash: str


class ProcessorDebitRequest(BaseModel):
    """No idempotency key here: the payment row the activity writes first owns it (SPEC §11)."""

    attempt: AttemptRef
    amount_cents: int
    currency: str
    details: PaymentDetails
    client: ClientContext
    authorization_text: str
    authorized_at: datetime
    otp_audit_event_id: int | None
    # Set: screen the bank account first, in the same activity (SPEC §9), auditing any validation
    # under this sequence. None: the attempt screened it in its own activity (histories before
    # the `debit-screens-and-follows` patch).
    screen_seq: int | None = None
