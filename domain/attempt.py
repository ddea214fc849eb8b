"""Messages exchanged with a `PayInvoiceWorkflow`: its input, update arguments and answers.

Nothing here carries a plaintext email or phone: destinations are masked before they reach
workflow code, and the activity that sends a code reads the real destination from the contact.
Bank numbers and the typed code do travel in update arguments; the payload codec encrypts them.
"""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from domain.channels import Channel
from domain.input_rules import AccountNumber, PersonName, RoutingNumber
from domain.policy import AttemptTimers, InvoiceKind, OtpPolicy, PaymentMethod
from domain.status import PaymentStatus

WORKFLOW_ID_PREFIX = "pay-invoice-"


def workflow_id_for(invoice_id: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{invoice_id}"


class ClientContext(BaseModel):
    """Who caused an action, for the audit trail (the customer's browser, staff, or the CLI)."""

    actor: str = "customer"
    ip: str | None = None
    user_agent: str | None = None


class PayInvoiceInput(BaseModel):
    """Who opened which invoice; nothing else. The OTP policy and timers are the worker's
    (`PayerResolution`): fields a starter adds here (a `policy`, `timers`) are ignored."""

    invoice_id: str
    opened_by: ClientContext = Field(default_factory=ClientContext)


class OfferedChannel(BaseModel):
    channel: Channel
    destination: str  # masked


class InvoiceSummary(BaseModel):
    invoice_id: str
    number: str
    amount_cents: int
    currency: str
    kind: InvoiceKind


class PayerResolution(BaseModel):
    invoice: InvoiceSummary
    customer_id: str
    payer_contact_id: str
    payer_name: str
    designated: bool  # False: the primary contact stands in because no payer is marked
    channels: list[OfferedChannel]
    # Wrong codes for this invoice inside the lockout window, whatever attempt they came from,
    # so cancelling and reopening never buys an attacker more guesses.
    prior_failed_checks: int = 0
    # The worker's rules, recorded in history with the resolution (SPEC §8): never the starter's.
    policy: OtpPolicy
    timers: AttemptTimers
    # The payer contact as resolved: a send refuses once the payer or its details change.
    contact_version: datetime
    # Set when wrong codes from earlier attempts lock this one as it opens.
    locked_until: datetime | None = None

    @property
    def otp_required(self) -> bool:
        return self.policy.otp_required_for(self.invoice.kind, self.invoice.amount_cents)

    @property
    def opening_status(self) -> PaymentStatus:
        """Where the attempt starts: the one rule the resolution's audit rows and the workflow share."""
        if not self.otp_required:
            return PaymentStatus.AWAITING_PAYMENT
        if not self.channels:
            return PaymentStatus.NO_CONTACT_METHOD
        if self.prior_failed_checks >= self.timers.max_failed:
            return PaymentStatus.LOCKED
        return PaymentStatus.CHOOSING_CHANNEL


class RequestCodeInput(BaseModel):
    channel: Channel
    client: ClientContext = Field(default_factory=ClientContext)


class VerifyCodeInput(BaseModel):
    code: str
    client: ClientContext = Field(default_factory=ClientContext)


class PaymentDetails(BaseModel):
    """Bank details as the debit needs them; the shapes are SPEC §11's (domain/input_rules.py)."""

    method: PaymentMethod
    account_holder: PersonName
    routing_number: RoutingNumber
    account_number: AccountNumber
    account_type: Literal["checking", "savings"]


class SubmitPaymentInput(BaseModel):
    details: PaymentDetails
    client: ClientContext = Field(default_factory=ClientContext)


class CancelInput(BaseModel):
    reason: str = "cancelled by customer"
    client: ClientContext = Field(default_factory=ClientContext)


class PaymentEvent(BaseModel):
    """A processor notification after submission (a return, a settlement)."""

    kind: str
    processor_reference: str | None = None
    reason: str | None = None


class PaymentReceipt(BaseModel):
    payment_id: str
    amount_cents: int
    currency: str
    account_last4: str
    method: PaymentMethod
    accepted: bool
    decline_reason: str | None = None
    processor_reference: str | None = None
    # This submission validated the account through the processor (SPEC §9) and audited it.
    account_validated_now: bool = False


class CodeChallengeView(BaseModel):
    send_seq: int
    channel: Channel
    destination: str
    sent_at: datetime
    expires_at: datetime


class AttemptState(BaseModel):
    """The `state` query and the body of every portal answer."""

    workflow_id: str
    run_id: str
    invoice_id: str
    status: PaymentStatus
    otp_required: bool | None = None
    invoice: InvoiceSummary | None = None
    customer_id: str | None = None
    payer_contact_id: str | None = None
    payer_name: str | None = None
    channels: list[OfferedChannel] = Field(default_factory=list)
    failed_channels: list[Channel] = Field(default_factory=list)
    attempts_remaining: int
    sends_remaining: int
    code: CodeChallengeView | None = None
    resend_available_at: datetime | None = None
    idle_expires_at: datetime | None = None
    payment_due_by: datetime | None = None
    payment: PaymentReceipt | None = None
    reason: str | None = None
    locked_until: datetime | None = None
    waiting_for: str

    @property
    def code_expires_at(self) -> datetime | None:
        return self.code.expires_at if self.code else None


class RequestCodeResult(BaseModel):
    status: PaymentStatus
    channel: Channel
    destination: str
    code_expires_at: datetime
    resend_available_at: datetime


class VerifyCodeResult(BaseModel):
    verified: bool
    status: PaymentStatus
    attempts_remaining: int
    reason: str | None = None


class SubmitPaymentResult(BaseModel):
    status: PaymentStatus
    payment: PaymentReceipt


class AttemptOutcome(BaseModel):
    status: PaymentStatus
    reason: str | None = None
    payment: PaymentReceipt | None = None


class DeliveryStatusEvent(BaseModel):
    """A provider's delivery report for a sent code (e.g. Twilio status callback)."""

    send_seq: int
    channel: Channel
    status: str  # provider's word: delivered, undelivered, failed, ...
    provider_code: str | None = None
