"""Activity names, timeouts and bounded retry policies used by the attempt workflow.

Activities are called by name so no I/O module (asyncpg, provider SDKs) is imported here.
"""

from datetime import timedelta

from temporalio.common import RetryPolicy

from domain.errors import ActivityFailureType

RESOLVE_PAYER = "resolve_payer"
SEND_CODE = "send_code"
CHECK_CODE = "check_code"
SUBMIT_DEBIT = "submit_debit"
APPEND_AUDIT_EVENT = "append_audit_event"
RECORD_LOCKOUT = "record_lockout"

DATABASE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=20),
    maximum_attempts=30,
    non_retryable_error_types=[
        ActivityFailureType.INVOICE_NOT_FOUND.value,
        ActivityFailureType.INVOICE_ALREADY_PAID.value,
        "InvoiceLocked",
    ],
)

# Transient provider faults retry with backoff a bounded number of times; permanent ones never.
DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=5,
    non_retryable_error_types=[
        ActivityFailureType.PERMANENT_DELIVERY_FAILURE.value,
        ActivityFailureType.CONTACT_CHANGED.value,
    ],
)

# The debit carries a stable idempotency key, so retrying is always safe.
DEBIT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=10,
)

DATABASE_TIMEOUT = timedelta(seconds=15)
DELIVERY_TIMEOUT = timedelta(seconds=30)
DEBIT_TIMEOUT = timedelta(seconds=30)
# Between rounds of debit retries the attempt stays in SUBMITTING (visible to `ops stuck`).
DEBIT_ROUND_PAUSE = timedelta(minutes=1)
