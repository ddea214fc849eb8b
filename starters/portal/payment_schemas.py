"""Answers about a payment's life after `PAID` (SPEC §9): the pay link's view and the staff view.

The customer's view carries what the link's holder may see and no more: amount, the account's last
four digits, status and dates, and the reason in words. No payment id, no processor reference, no
routing number: a forwarded link tells nothing that identifies the bank account. Staff see ids and
return codes with their Nacha meaning.
"""

from datetime import datetime

from pydantic import BaseModel, Field

from domain.payment_notice import NextStep, PaymentPhase

# --- customer side (GET /api/portal/payment) --------------------------------------------------------


class LinkInvoiceView(BaseModel):
    number: str
    amount_cents: int
    balance_cents: int
    currency: str
    status: str = Field(description="open, pending (a debit is processing) or paid")


class LinkPaymentView(BaseModel):
    status: str = Field(description="processing, settled, failed, returned or canceled")
    phase: PaymentPhase = Field(description="processing, settled, or did_not_go_through")
    amount_cents: int
    currency: str
    account_last4: str
    submitted_at: datetime
    expected_settlement_at: datetime | None = None
    settled_at: datetime | None = None
    ended_at: datetime | None = Field(default=None, description="When it failed, was returned or canceled")
    return_code: str | None = None
    reason: str | None = Field(default=None, description="Why it did not go through, in plain words")
    next_step: NextStep | None = Field(
        default=None,
        description="pay_again, pay_with_another_account, or contact_company (unauthorized returns)",
    )


class LinkPaymentStatusView(BaseModel):
    """The invoice's latest payment the processor accepted, as its pay link shows it."""

    invoice: LinkInvoiceView
    payment: LinkPaymentView | None = Field(default=None, description="None: no payment was accepted yet")
    can_pay: bool = Field(description="A new attempt may start now (the one may-open rule)")
    server_time: datetime


# --- staff side (GET /api/staff/invoices/{invoice_id}) ------------------------------------------------


class StaffPaymentView(BaseModel):
    payment_id: str
    status: str = Field(description="submitting, declined, processing, settled, failed, returned, canceled")
    amount_cents: int
    currency: str
    account_last4: str
    decline_reason: str | None = None
    return_code: str | None = None
    return_meaning: str | None = Field(default=None, description="The return code's Nacha meaning")
    unauthorized_return: bool = Field(
        default=False, description="R05, R07, R10, R29: no fresh pay link; staff follow up"
    )
    submitted_at: datetime
    expected_settlement_at: datetime | None = None
    settled_at: datetime | None = None
    failed_at: datetime | None = None
    returned_at: datetime | None = None
    canceled_at: datetime | None = None


class StaffInvoiceView(BaseModel):
    invoice_id: str
    number: str
    customer_id: str
    kind: str
    status: str = Field(description="open, pending or paid")
    amount_cents: int
    balance_cents: int
    currency: str
    payments: list[StaffPaymentView] = Field(description="Oldest first")
