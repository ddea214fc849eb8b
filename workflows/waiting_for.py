"""The workflow's current details: what the attempt waits for, in words an operator reads in the UI."""

from collections.abc import Sequence
from datetime import datetime

from domain.attempt import CodeChallengeView
from domain.channels import Channel
from domain.status import PaymentStatus


def describe_wait(
    *,
    status: PaymentStatus,
    code: CodeChallengeView | None,
    attempts_remaining: int,
    failed_channels: Sequence[Channel],
    reason: str | None,
    payment_due_by: datetime | None,
) -> str:
    failed = f" ({', '.join(c.value for c in failed_channels)} failed)" if failed_channels else ""
    if status is PaymentStatus.RESOLVING_PAYER:
        return "Resolving the invoice, the Customer Portal Payer and the OTP policy."
    if status is PaymentStatus.CHOOSING_CHANNEL:
        return f"Waiting for the customer to choose where the code goes{failed}."
    if status is PaymentStatus.AWAITING_CODE and code is not None:
        via = "SMS" if code.channel is Channel.SMS else "email"
        return (
            f"Waiting for the code sent by {via} to {code.destination}, {attempts_remaining} attempts left, "
            f"expires {code.expires_at:%H:%M} UTC{failed}."
        )
    if status is PaymentStatus.AWAITING_CODE:
        return f"Waiting for the customer to ask for a new code{failed}, {attempts_remaining} attempts left."
    if status is PaymentStatus.AWAITING_PAYMENT:
        due = f" by {payment_due_by:%H:%M} UTC" if payment_due_by else ""
        return f"Waiting for the customer's bank details{due}."
    if status is PaymentStatus.SUBMITTING:
        return "Waiting for the payment processor's answer."
    return f"Finished: {status.value}." + (f" {reason}" if reason else "")


def describe_status(status: PaymentStatus) -> str:
    """What an attempt in `status` waits for, without its run's details (operators' listings)."""
    if status is PaymentStatus.AWAITING_CODE:
        return "Waiting for the customer to enter the code."
    return describe_wait(
        status=status, code=None, attempts_remaining=0, failed_channels=(), reason=None, payment_due_by=None
    )
