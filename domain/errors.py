"""The `ApplicationError` types of PortalPay: one enum for what the workflow refuses and what activities fail with.

The workflow raises them to refuse a message, activities raise them as non-retryable failures
that retry policies and the workflow match on, and the portal maps them to HTTP statuses
(`starters.portal.dependencies`). The strings are a contract: they are recorded in histories.
"""

from enum import StrEnum


class ErrorType(StrEnum):
    INVALID_STATE = "InvalidState"  # 409: action not allowed now; details name the state
    INVALID_INPUT = "InvalidInput"  # 422
    CHANNEL_UNAVAILABLE = "ChannelUnavailable"  # 422: not on file, or failed for this attempt
    RESEND_TOO_SOON = "ResendTooSoon"  # 429 with retry_after
    TOO_MANY_SENDS = "TooManySends"  # 429 with retry_after (per attempt, per invoice, per destination)
    DELIVERY_FAILED = "DeliveryFailed"  # 502: provider refused; another channel is offered
    INVOICE_NOT_FOUND = "InvoiceNotFound"  # 404
    INVOICE_ALREADY_PAID = "InvoiceAlreadyPaid"  # 409
    INVOICE_LOCKED = "InvoiceLocked"  # 429 with retry_after
    INVOICE_VOID = "InvoiceVoid"  # 410: SPEC §12, the company voided it; no attempt starts
    # SPEC §9: the attempt stays AWAITING_PAYMENT; the customer may use another account.
    BANK_ACCOUNT_BLOCKED = "BankAccountBlocked"  # 422
    ACCOUNT_VALIDATION_FAILED = "AccountValidationFailed"  # 422: check the numbers
    CONTACT_CHANGED = "ContactChanged"  # 409: the payer or its destination changed since resolution
    DEBIT_IN_FLIGHT = "DebitInFlight"  # 409: another debit for this invoice awaits the processor
    ATTEMPT_BUSY = "AttemptBusy"  # 429 with retry_after: Temporal is shedding load or the run is closing
    # Activity failures that never reach a customer as such:
    PERMANENT_DELIVERY_FAILURE = "PermanentDeliveryFailure"
    TRANSIENT_DELIVERY_FAILURE = "TransientDeliveryFailure"
    CONCURRENT_SEND = "ConcurrentSend"
    PROCESSOR_REJECTED = "ProcessorRejected"
    # The debit activity could not screen the account (processor unreachable); nothing was written.
    # The workflow answers ATTEMPT_BUSY ("try again in a moment").
    ACCOUNT_CHECK_UNAVAILABLE = "AccountCheckUnavailable"


# Transitional name used by the portal and tests; the same enum.
RefusalType = ErrorType
