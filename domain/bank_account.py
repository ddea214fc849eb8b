"""Screening a bank account before a debit (SPEC §9): blocked accounts are refused; an account not
seen before is validated through the processor first (Nacha WEB rule)."""

from pydantic import BaseModel

from domain.activity_io import AttemptRef
from domain.attempt import ClientContext
from domain.errors import ErrorType

BLOCKED_MESSAGE = (
    "This bank account cannot be used for payments: an earlier debit from it was returned. "
    "Please use another account or contact us."
)
VALIDATION_FAILED_MESSAGE = (
    "We could not verify this bank account. Please check the routing and account numbers and try again."
)
# A notice of change from the bank (SPEC §13): the numbers as entered are out of date.
NEEDS_NEW_DETAILS_MESSAGE = (
    "Your bank has told us this account's details have changed. Please enter your routing and "
    "account numbers again, as your bank now shows them."
)
# The processor could not be reached to screen the account: nothing was written; press again.
CHECK_UNAVAILABLE_MESSAGE = "the bank account could not be checked just now; please try again"
CHECK_UNAVAILABLE_RETRY_AFTER_SECONDS = 30


class ScreenAccountRequest(BaseModel):
    attempt: AttemptRef
    # Reaches the activity encrypted by the payload codec; only a keyed fingerprint is ever stored.
    routing_number: str
    account_number: str
    screen_seq: int
    client: ClientContext


class ScreenAccountResult(BaseModel):
    allowed: bool
    fingerprint: str
    reason: str | None = None  # "blocked" | "validation_failed" | "needs_new_details"
    message: str | None = None
    validated_now: bool = False

    @property
    def refusal(self) -> ErrorType:
        """The customer-facing refusal (422) when the account is not allowed. An account needing new
        details is refused as a failed validation: the customer re-enters the numbers."""
        if self.reason == "blocked":
            return ErrorType.BANK_ACCOUNT_BLOCKED
        return ErrorType.ACCOUNT_VALIDATION_FAILED


class BeginLifecycleRequest(BaseModel):
    """The debit was accepted: the payment is processing, the invoice pending, its workflow starts."""

    payment_id: str
    # The keyed fingerprint from the screening, kept on the payment so a return can block the account.
    bank_fingerprint: str | None = None


# SPEC §9: "a blocked bank account is known by its normalised numbers". Separators a person may
# type, and leading zeros a bank ignores, never make another account.
_SEPARATORS = str.maketrans("", "", " -\t")
# The longest account number the input rules accept (SPEC §11): bounds the legacy spellings.
MAX_ACCOUNT_DIGITS = 17


def normalised_routing_number(routing_number: str) -> str:
    return routing_number.translate(_SEPARATORS)


def normalised_account_number(account_number: str) -> str:
    """The account as the bank knows it: no separators, no leading zeros (all zeros stay one)."""
    return account_number.translate(_SEPARATORS).lstrip("0") or "0"


def zero_padded_spellings(account_number: str) -> list[str]:
    """Every spelling of the account with leading zeros up to the longest accepted number.

    Fingerprints stored before normalisation were taken of the number as typed; a customer may have
    typed any of these, so a lookup of stored rows tries them all (at most 17 HMACs)."""
    core = normalised_account_number(account_number)
    return [core.rjust(width, "0") for width in range(len(core), MAX_ACCOUNT_DIGITS + 1)]
