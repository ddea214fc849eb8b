"""Activity names, timeouts and retry policies used by the attempt workflow.

Activities are called by name so no I/O module (asyncpg, provider SDKs) is imported here.
"""

from datetime import timedelta

from temporalio.common import RetryPolicy

from domain.errors import ErrorType

RESOLVE_PAYER = "resolve_payer"
SEND_CODE = "send_code"
CHECK_CODE = "check_code"
SUBMIT_DEBIT = "submit_debit"
# The folded submission (screening, debit, follower start) under its own name, behind the
# `debit-under-own-name` patch: a worker built before the fold knows only `submit_debit` and would
# drop the screening it cannot read (issue 20 finding 6, docs/versioning.md).
SUBMIT_SCREENED_DEBIT = "submit_screened_debit"
APPEND_AUDIT_EVENT = "append_audit_event"

ALL_ACTIVITY_NAMES = (
    RESOLVE_PAYER,
    SEND_CODE,
    CHECK_CODE,
    SUBMIT_DEBIT,
    SUBMIT_SCREENED_DEBIT,
    APPEND_AUDIT_EVENT,
)

# Database steps the attempt must complete (audit rows, checks, lockouts) retry until the database
# answers: a long schedule-to-close outlasts any outage, where a small attempt count would leave a
# handler halfway (money taken, nothing recorded). Every step is idempotent by its key.
MUST_FINISH_WITHIN = timedelta(days=7)
DATABASE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=[
        ErrorType.INVOICE_NOT_FOUND.value,
        ErrorType.INVOICE_ALREADY_PAID.value,
        ErrorType.INVOICE_LOCKED.value,
    ],
)

# Transient provider faults retry with backoff a bounded number of times; permanent ones, a send
# the caps refuse and a changed payer never.
DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=5,
    non_retryable_error_types=[
        ErrorType.PERMANENT_DELIVERY_FAILURE.value,
        ErrorType.CONTACT_CHANGED.value,
        ErrorType.TOO_MANY_SENDS.value,
        ErrorType.RESEND_TOO_SOON.value,
    ],
)

# The payment row owns the idempotency key, so retrying is always the same debit. Without a cap
# (SPEC §11: retried until the processor answers): the retry round lives in the activity's policy,
# visible as a pending activity; the workflow's round loop only serves histories recorded with it.
DEBIT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=0,
    non_retryable_error_types=[
        ErrorType.DEBIT_IN_FLIGHT.value,
        ErrorType.PROCESSOR_REJECTED.value,
        ErrorType.BANK_ACCOUNT_BLOCKED.value,
        ErrorType.ACCOUNT_VALIDATION_FAILED.value,
        ErrorType.ACCOUNT_CHECK_UNAVAILABLE.value,
    ],
)

DATABASE_TIMEOUT = timedelta(seconds=15)
DELIVERY_TIMEOUT = timedelta(seconds=30)
DEBIT_TIMEOUT = timedelta(seconds=30)
# Between rounds of debit retries the attempt stays in SUBMITTING (visible to `ops stuck`).
DEBIT_ROUND_PAUSE = timedelta(minutes=1)
