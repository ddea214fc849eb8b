"""Activity names, timeouts and retry policies of the payment lifecycle (SPEC §9).

Called by name so no I/O module reaches workflow code.
"""

from datetime import timedelta

from temporalio.common import RetryPolicy

LOAD_ACH_PAYMENT = "load_ach_payment"
BEGIN_PAYMENT_LIFECYCLE = "begin_payment_lifecycle"
SCREEN_BANK_ACCOUNT = "screen_bank_account"
APPLY_PAYMENT_OUTCOME = "apply_payment_outcome"
NOTIFY_PAYMENT_OUTCOME = "notify_payment_outcome"
RECORD_LATE_PROCESSOR_EVENT = "record_late_processor_event"
CHECK_DEBIT_STATUS = "check_debit_status"
RECONCILE_PROCESSOR = "reconcile_processor"

# Each effect is idempotent, so retrying a database or provider hiccup is always safe; bounded so a
# broken dependency surfaces as a failed activity an operator sees instead of a silent loop.
LIFECYCLE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=50,
    non_retryable_error_types=["PaymentNotFound"],
)
# Notifications: a permanent refusal (bad address) is not worth retrying; the audit row stands.
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=20,
    non_retryable_error_types=["PermanentDeliveryFailure"],
)
# Account screening sits in front of the customer's submit: a bounded number of quick retries, then
# the update fails and the customer may submit again.
SCREEN_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=5,
    non_retryable_error_types=["ProcessorRejected"],
)
LIFECYCLE_TIMEOUT = timedelta(seconds=30)
# The customer waits on the screening: a lost answer (a worker or server restart) is retried soon.
SCREEN_TIMEOUT = timedelta(seconds=8)
RECONCILE_TIMEOUT = timedelta(minutes=10)
