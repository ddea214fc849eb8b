"""When a payment needs identity verification, and the attempt's timers.

The policy is configuration captured when the attempt starts (bank-partner rules cannot be
switched off per customer), and the timers travel in the workflow input so workflow code never
reads the environment.
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

    def otp_required_for(self, kind: InvoiceKind) -> bool:
        """The portal offers only OTP-gated methods, so any required method gates the attempt."""
        return kind not in self.exempt_kinds and bool(self.required_methods)


class AttemptTimers(BaseModel):
    code_ttl_seconds: int = Field(default=600, gt=0)
    max_failed: int = Field(default=5, gt=0)
    lockout_seconds: int = Field(default=1800, ge=0)
    resend_cooldown_seconds: int = Field(default=30, ge=0)
    max_sends: int = Field(default=5, gt=0)
    idle_seconds: int = Field(default=1800, gt=0)
    payment_window_seconds: int = Field(default=900, gt=0)
