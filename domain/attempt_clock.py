"""The attempt's clock: every deadline an attempt keeps, computed in one place.

The workflow waits on them, its `state` query reports them and its current details quote them,
so all three must agree; each is a pure function of the worker's timers and what happened when.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.policy import AttemptTimers
from domain.status import PaymentStatus

# While our own work is in flight the customer is not the one keeping us waiting.
_NEVER_EXPIRES = frozenset({PaymentStatus.RESOLVING_PAYER, PaymentStatus.SUBMITTING})


@dataclass(frozen=True)
class AttemptClock:
    timers: AttemptTimers

    def idle_deadline(self, last_action_at: datetime) -> datetime:
        return last_action_at + timedelta(seconds=self.timers.idle_seconds)

    def payment_due_by(self, verified_at: datetime | None, otp_required: bool | None) -> datetime | None:
        """After verification the customer has the payment window; without OTP only idleness counts."""
        if verified_at is None or not otp_required:
            return None
        return verified_at + timedelta(seconds=self.timers.payment_window_seconds)

    def resend_available_at(self, last_sent_at: datetime | None) -> datetime | None:
        if last_sent_at is None:
            return None
        return last_sent_at + timedelta(seconds=self.timers.resend_cooldown_seconds)

    def code_expires_at(self, sent_at: datetime) -> datetime:
        return sent_at + timedelta(seconds=self.timers.code_ttl_seconds)

    def lockout_until(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.timers.lockout_seconds)

    def expiry_deadline(
        self,
        status: PaymentStatus,
        *,
        last_action_at: datetime,
        verified_at: datetime | None,
        otp_required: bool | None,
    ) -> datetime | None:
        """When the attempt expires if nothing happens; None while it cannot expire."""
        if status in _NEVER_EXPIRES or status.is_terminal:
            return None
        idle = self.idle_deadline(last_action_at)
        if status is PaymentStatus.AWAITING_PAYMENT:
            due = self.payment_due_by(verified_at, otp_required)
            if due is not None:
                return min(idle, due)
        return idle
