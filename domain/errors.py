"""`ApplicationError` types the workflow raises to refuse or fail a message.

Starters map them to HTTP statuses (see `starters`), so the names are a contract.
"""

from enum import StrEnum


class RefusalType(StrEnum):
    INVALID_STATE = "InvalidState"  # 409: action not allowed now; details name the state
    INVALID_INPUT = "InvalidInput"  # 422
    CHANNEL_UNAVAILABLE = "ChannelUnavailable"  # 422: not on file, or failed for this attempt
    RESEND_TOO_SOON = "ResendTooSoon"  # 429 with retry_after
    TOO_MANY_SENDS = "TooManySends"  # 429
    DELIVERY_FAILED = "DeliveryFailed"  # 502: provider refused; another channel is offered
    INVOICE_NOT_FOUND = "InvoiceNotFound"  # 404
    INVOICE_ALREADY_PAID = "InvoiceAlreadyPaid"  # 409
    INVOICE_LOCKED = "InvoiceLocked"  # 429 with retry_after
    # SPEC §9: the attempt stays AWAITING_PAYMENT; the customer may use another account.
    BANK_ACCOUNT_BLOCKED = "BankAccountBlocked"  # 422
    ACCOUNT_VALIDATION_FAILED = "AccountValidationFailed"  # 422: check the numbers


class ActivityFailureType(StrEnum):
    """Non-retryable failures raised by activities, matched by the workflow and retry policies."""

    INVOICE_NOT_FOUND = "InvoiceNotFound"
    INVOICE_ALREADY_PAID = "InvoiceAlreadyPaid"
    PERMANENT_DELIVERY_FAILURE = "PermanentDeliveryFailure"
    CONTACT_CHANGED = "ContactChanged"
