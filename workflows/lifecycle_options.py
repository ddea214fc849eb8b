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
ALERT_PAYMENT_OVERDUE = "alert_payment_overdue"
RECONCILE_PROCESSOR = "reconcile_processor"

# Each effect is idempotent, so retrying a database or provider hiccup is always safe; bounded for the
# attempt's steps and the reconciliation run, so a broken dependency surfaces as a failed activity.
LIFECYCLE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=50,
    non_retryable_error_types=["PaymentNotFound"],
)
# The follower's effects are idempotent, so retrying is always safe, and a payment must be followed
# to its end whatever fails: no cap on attempts (a processor or database outage of days is waited
# out), a bounded backoff, and the failing activity stays visible as pending (`ops stuck`).
FOLLOWER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=0,
    non_retryable_error_types=["PaymentNotFound"],
)
# Notifications: a permanent refusal (bad address, dead phone) is audited PAYMENT_NOTICE_FAILED by
# the notice itself, which then returns; anything else (a provider outage) is retried without a cap.
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=0,
    non_retryable_error_types=["PaymentNotFound"],
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
