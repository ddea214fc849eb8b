"""Request and answer bodies of the portal HTTP API (SPEC §4), as they appear in `/openapi.json`.

Customer request bodies refuse unknown fields: nothing a browser sends can name an email or a
phone, so a destination can only ever come from the payer contact on file (SPEC §1).
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.attempt import PaymentDetails
from domain.channels import Channel
from domain.input_rules import PlainText, normalize_typed_code
from domain.policy import InvoiceKind, PaymentMethod
from domain.status import PaymentStatus

# --- errors -----------------------------------------------------------------------------------


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer. `status` names the attempt's state when one is involved (409)."""

    error: str = Field(description="Machine-readable reason, e.g. InvalidState, ResendTooSoon, TokenExpired")
    message: str = Field(description="A sentence a customer or a developer can act on")
    detail: str | list[dict[str, Any]] = Field(description="The message, or the field errors for 422")
    status: PaymentStatus | None = Field(default=None, description="The attempt's current state, if any")
    retry_after: int | None = Field(default=None, description="Seconds to wait before trying again (429)")
    reason: str | None = Field(
        default=None, description="Why a credential was refused, e.g. link_revoked (401 after a payer change)"
    )


# --- customer side ------------------------------------------------------------------------------


class InvoiceView(BaseModel):
    invoice_id: str
    number: str
    amount_cents: int
    currency: str
    kind: InvoiceKind


class PayerView(BaseModel):
    name: str


class ChannelView(BaseModel):
    channel: Channel
    destination: str = Field(description="Masked: j•••@example.com or •••-•••-1234")


class CodeView(BaseModel):
    channel: Channel
    destination: str
    sent_at: datetime
    expires_at: datetime


class PaymentView(BaseModel):
    payment_id: str
    amount_cents: int
    currency: str
    account_last4: str
    method: PaymentMethod
    accepted: bool
    decline_reason: str | None = None
    processor_reference: str | None = None
    status: str | None = Field(
        default=None,
        description="The payment's own status (SPEC §9): processing, settled, failed, returned, canceled, or"
        " declined. `processing` means submitted to the bank, not yet settled",
    )
    expected_settlement_at: datetime | None = Field(
        default=None, description="When the processor expects the debit to settle (while processing)"
    )


class SessionView(BaseModel):
    """One Pay Your Invoice attempt as the customer sees it."""

    session_id: str
    status: PaymentStatus
    invoice: InvoiceView | None = None
    payer: PayerView | None = None
    channels: list[ChannelView] = Field(default_factory=list)
    failed_channels: list[Channel] = Field(default_factory=list)
    otp_required: bool | None = None
    attempts_remaining: int
    sends_remaining: int
    code: CodeView | None = None
    code_expires_at: datetime | None = None
    resend_available_at: datetime | None = None
    idle_expires_at: datetime | None = None
    payment_due_by: datetime | None = None
    payment: PaymentView | None = None
    reason: str | None = None
    waiting_for: str
    retry_at: datetime | None = Field(default=None, description="LOCKED: when a new attempt may start")
    authorization_text: str | None = Field(
        default=None,
        description="The debit authorization wording; `{account_last4}` is filled in as the customer types",
    )
    server_time: datetime = Field(description="The server's clock, for countdowns")


class RequestCodeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel


class CodeSentView(BaseModel):
    session_id: str
    status: PaymentStatus
    channel: Channel
    destination: str
    code_expires_at: datetime
    resend_available_at: datetime
    server_time: datetime


class VerifyCodeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(
        min_length=1,
        max_length=32,
        examples=["123456"],
        description="The 6 digits (0-9) from the message; spaces and hyphens between them are ignored",
    )

    @field_validator("code")
    @classmethod
    def _six_ascii_digits(cls, value: str) -> str:
        return normalize_typed_code(value)


class VerifyView(BaseModel):
    session_id: str
    verified: bool
    status: PaymentStatus
    attempts_remaining: int
    reason: str | None = None


class PaymentBody(PaymentDetails):
    """Bank details: routing number 9 digits (0-9) passing the ABA checksum, account number 4-17
    digits (0-9), no control characters in the holder's name. Anything else, or an unknown field,
    is 422 and reaches neither the workflow nor the processor."""

    model_config = ConfigDict(extra="forbid")


class PaymentResultView(BaseModel):
    session_id: str
    status: PaymentStatus
    payment: PaymentView


class CancelView(BaseModel):
    session_id: str
    status: PaymentStatus


# --- staff side -----------------------------------------------------------------------------------


class ContactView(BaseModel):
    contact_id: str
    name: str
    email: str | None
    phone: str | None
    is_primary: bool
    portal_payer: bool = Field(description="The 'Customer Portal Payer' tag")
    channels: list[Channel] = Field(description="Where a code could be sent; empty means none on file")
    receives_otp: bool = Field(description="This contact gets the payment link and the codes")


class ContactsView(BaseModel):
    customer_id: str
    customer_name: str
    payer_contact_id: str | None
    payer_source: Literal["designated", "primary"] | None
    payer_problem: str | None = Field(
        default=None, description="Why a payment cannot be verified (e.g. no email or phone on the payer)"
    )
    contacts: list[ContactView]


class DesignatePayerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact_id: PlainText = Field(min_length=1, max_length=200)


class ChangeConsequences(BaseModel):
    """What a payer change or a change to the payer's email/phone did (SPEC §11)."""

    changed_fields: list[str] = Field(default_factory=list, description="Which of email/phone changed")
    links_revoked_before: datetime | None = Field(
        default=None,
        description="Pay links of this customer issued before this moment now answer 401 link_revoked",
    )
    cancelled_invoice_ids: list[str] = Field(
        default_factory=list, description="Invoices whose running attempt was cancelled"
    )
    notified: list[str] = Field(
        default_factory=list, description="Masked addresses told of the change (old and new)"
    )
    problems: list[str] = Field(
        default_factory=list, description="What could not be done (an attempt mid-debit, a failed notice)"
    )


class DesignationView(ContactsView, ChangeConsequences):
    previous_payer_contact_id: str | None
    audit_event_id: int


class RecipientView(BaseModel):
    contact_id: str
    name: str
    portal_payer: bool
    channels: list[Channel]


class DeliveryView(BaseModel):
    sent: bool
    channel: Channel | None = None
    destination: str | None = Field(default=None, description="Masked")
    provider: str | None = None
    message_id: str | None = None
    problem: str | None = None


class PaymentRequestView(BaseModel):
    invoice_id: str
    invoice_number: str
    url: str
    expires_at: datetime
    recipient: RecipientView
    delivery: DeliveryView


class AuditTrailView(BaseModel):
    invoice_id: str
    chain_ok: bool
    events: list[dict[str, Any]]


class OutboxMessage(BaseModel):
    channel: str
    to: str
    subject: str
    body: str
    created_at: datetime


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: bool
