"""The attempt's states: the `PaymentStatus` search attribute and `status` in every portal answer."""

from enum import StrEnum


class PaymentStatus(StrEnum):
    RESOLVING_PAYER = "RESOLVING_PAYER"
    CHOOSING_CHANNEL = "CHOOSING_CHANNEL"
    AWAITING_CODE = "AWAITING_CODE"
    AWAITING_PAYMENT = "AWAITING_PAYMENT"
    SUBMITTING = "SUBMITTING"
    PAID = "PAID"
    DECLINED = "DECLINED"
    LOCKED = "LOCKED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"
    NO_CONTACT_METHOD = "NO_CONTACT_METHOD"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {
        PaymentStatus.PAID,
        PaymentStatus.DECLINED,
        PaymentStatus.LOCKED,
        PaymentStatus.EXPIRED,
        PaymentStatus.CANCELLED,
        PaymentStatus.NO_CONTACT_METHOD,
    }
)

# A customer may cancel only before money moves; once SUBMITTING the processor decides.
CANCELLABLE_STATUSES = frozenset(
    {
        PaymentStatus.RESOLVING_PAYER,
        PaymentStatus.CHOOSING_CHANNEL,
        PaymentStatus.AWAITING_CODE,
        PaymentStatus.AWAITING_PAYMENT,
    }
)
