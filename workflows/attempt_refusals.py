"""The refusals an attempt answers with, each built once.

Every refusal is a non-retryable `ApplicationError` whose `type` is an `ErrorType` the portal and
the CLI map to an answer (an HTTP status, an exit code) and whose details carry what the customer
may do next (`status`, `retry_after`, the channels left).
"""

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.bank_account import CHECK_UNAVAILABLE_MESSAGE, CHECK_UNAVAILABLE_RETRY_AFTER_SECONDS
    from domain.errors import ErrorType
    from domain.status import PaymentStatus

# Refusals an activity raises at resolution that the attempt passes on to whoever opened it.
RESOLUTION_REFUSALS = frozenset(
    {ErrorType.INVOICE_NOT_FOUND, ErrorType.INVOICE_ALREADY_PAID, ErrorType.INVOICE_LOCKED}
)
# The bank-account screening's answers (SPEC §9): nothing was debited.
SCREEN_REFUSALS = frozenset(
    {ErrorType.BANK_ACCOUNT_BLOCKED, ErrorType.ACCOUNT_VALIDATION_FAILED, ErrorType.ACCOUNT_CHECK_UNAVAILABLE}
)


def refuse(kind: ErrorType, message: str, **details: Any) -> ApplicationError:
    return ApplicationError(message, details, type=kind.value, non_retryable=True)


def invalid_state(message: str, status: PaymentStatus) -> ApplicationError:
    return refuse(ErrorType.INVALID_STATE, message, status=status.value)


def account_check_unavailable(status: PaymentStatus) -> ApplicationError:
    """The bank account could not be checked just now: try again shortly (nothing was debited)."""
    return refuse(
        ErrorType.ATTEMPT_BUSY,
        CHECK_UNAVAILABLE_MESSAGE,
        status=status.value,
        retry_after=CHECK_UNAVAILABLE_RETRY_AFTER_SECONDS,
    )


def application_cause(err: ActivityError) -> tuple[ErrorType | None, ApplicationError | None]:
    """The `ErrorType` an activity failed with (None for anything else) and its error."""
    cause = err.cause
    if not isinstance(cause, ApplicationError):
        return None, None
    known = cause.type in ErrorType.__members__.values()
    return (ErrorType(cause.type) if known and cause.type else None), cause


def error_details(err: ApplicationError | None) -> dict[str, Any]:
    first = err.details[0] if err is not None and err.details else None
    return dict(first) if isinstance(first, dict) else {}
