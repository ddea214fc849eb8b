"""What a customer is told about a payment the processor accepted (SPEC §9), in plain words.

The attempt's `PAID` only means "the processor accepted the debit"; the money can still fail or come
back for days. So the customer sees one of three phases: *processing* (submitted, expected to settle
by a date), *settled* (paid), or *did not go through* (failed, returned or canceled) with the reason
in words a customer understands and what to do next. Which codes block the account and which are
unauthorized is `domain/ach_returns.py`'s rule; this module only words it.
"""

from dataclasses import dataclass
from enum import StrEnum

from domain.ach_returns import return_code


class PaymentPhase(StrEnum):
    PROCESSING = "processing"
    SETTLED = "settled"
    DID_NOT_GO_THROUGH = "did_not_go_through"


class NextStep(StrEnum):
    """What the customer can do after a payment did not go through."""

    PAY_AGAIN = "pay_again"  # R01, R09, canceled: the same account may be used again
    PAY_WITH_ANOTHER_ACCOUNT = "pay_with_another_account"  # the account is now blocked
    CONTACT_COMPANY = "contact_company"  # unauthorized codes: no fresh link, staff follow up


# Statuses the processor accepted, newest life first; `accepted` is the pre-lifecycle word for processing.
ACCEPTED_STATUSES = ("accepted", "processing", "settled", "failed", "returned", "canceled")

_PHASE = {
    "accepted": PaymentPhase.PROCESSING,
    "processing": PaymentPhase.PROCESSING,
    "settled": PaymentPhase.SETTLED,
    "failed": PaymentPhase.DID_NOT_GO_THROUGH,
    "returned": PaymentPhase.DID_NOT_GO_THROUGH,
    "canceled": PaymentPhase.DID_NOT_GO_THROUGH,
}

# The customer's words for each code: what their bank said, not the Nacha wording staff read.
_CUSTOMER_WORDS = {
    "R01": "there were not enough funds in the account",
    "R02": "the account is closed",
    "R03": "the bank could not find the account",
    "R04": "the account number is not valid",
    "R05": "the bank reported the debit as not authorized",
    "R07": "the authorization for this debit was revoked",
    "R08": "a stop payment was placed on the debit",
    "R09": "the funds in the account were not yet available",
    "R10": "the account holder told the bank the debit was not authorized",
    "R16": "the account is frozen",
    "R20": "the account does not allow this kind of payment",
    "R29": "the bank reported the debit as not authorized by the company",
}


@dataclass(frozen=True)
class PaymentNotice:
    phase: PaymentPhase
    reason: str | None = None  # plain words, only when it did not go through
    next_step: NextStep | None = None

    @property
    def invoice_open_again(self) -> bool:
        return self.phase is PaymentPhase.DID_NOT_GO_THROUGH


def lifecycle_status(stored: str) -> str:
    """The status a customer or staff member reads: rows from before the lifecycle said `accepted`."""
    return "processing" if stored == "accepted" else stored


def phase_of(status: str) -> PaymentPhase | None:
    """None for a payment the processor never accepted (submitting, declined): the attempt tells those."""
    return _PHASE.get(status)


def payment_notice(status: str, code: str | None) -> PaymentNotice | None:
    phase = phase_of(status)
    if phase is None:
        return None
    if phase is not PaymentPhase.DID_NOT_GO_THROUGH:
        return PaymentNotice(phase)
    if status == "canceled":
        return PaymentNotice(
            phase, "the payment was canceled before it was sent to your bank", NextStep.PAY_AGAIN
        )
    rule = return_code(code)
    words = _CUSTOMER_WORDS.get(rule.code, "your bank returned the payment")
    if rule.unauthorized:
        step = NextStep.CONTACT_COMPANY
    elif rule.blocks_account:
        step = NextStep.PAY_WITH_ANOTHER_ACCOUNT
    else:
        step = NextStep.PAY_AGAIN
    return PaymentNotice(phase, words, step)
