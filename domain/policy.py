"""When a payment needs identity verification, and the attempt's timers.

Both are the worker's configuration (bank-partner rules cannot be switched off per customer):
they reach the workflow in the first activity's result, so they are recorded in history and
replay the same, and nobody who can start a workflow can weaken them (SPEC §8, §11).
"""

from enum import StrEnum

from pydantic import BaseModel, Field


class PaymentMethod(StrEnum):
    ECHECK = "echeck"
    ACH = "ach"


class InvoiceKind(StrEnum):
    INVOICE = "invoice"
    DEPOSIT = "deposit"


class OtpPolicy(BaseModel):
    required_methods: list[PaymentMethod] = Field(
        default_factory=lambda: [PaymentMethod.ECHECK, PaymentMethod.ACH]
    )
    exempt_kinds: list[InvoiceKind] = Field(default_factory=lambda: [InvoiceKind.DEPOSIT])
    # Larger transactions need a code whatever their kind, deposits included (SPEC §11).
    required_above_cents: int | None = Field(default=None, gt=0)

    def otp_required_for(self, kind: InvoiceKind, amount_cents: int) -> bool:
        """The portal offers only OTP-gated methods, so any required method gates the attempt."""
        if not self.required_methods:
            return False
        if self.required_above_cents is not None and amount_cents >= self.required_above_cents:
            return True
        return kind not in self.exempt_kinds

    def exemption_reason(self, kind: InvoiceKind, amount_cents: int) -> str | None:
        """Why no code is needed, in words for the audit trail and the proof of authorization."""
        if self.otp_required_for(kind, amount_cents):
            return None
        if not self.required_methods:
            return "no payment method requires OTP under the configured policy"
        return f"{kind.value} payments are exempt from OTP under the configured policy"


class AttemptTimers(BaseModel):
    code_ttl_seconds: int = Field(default=600, gt=0)
    max_failed: int = Field(default=5, gt=0)
    lockout_seconds: int = Field(default=1800, ge=0)
    resend_cooldown_seconds: int = Field(default=30, ge=0)
    max_sends: int = Field(default=5, gt=0)
    idle_seconds: int = Field(default=1800, gt=0)
    payment_window_seconds: int = Field(default=900, gt=0)


class SendCaps(BaseModel):
    """Code sends across attempts, kept in PostgreSQL so cancel-and-reopen buys nothing (SPEC §11)."""

    per_invoice: int = Field(default=5, gt=0)
    per_invoice_window_seconds: int = Field(default=1800, gt=0)
    per_destination_day: int = Field(default=10, gt=0)
    cooldown_seconds: int = Field(default=30, ge=0)
