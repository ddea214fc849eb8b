"""The attempt's debit, retried until the processor answers (SPEC §11 "Money").

The payment row owns the idempotency key, so every retry and every round is the same debit. The
activity writes PAYMENT_SUBMITTED with the row and the outcome's audit row with the outcome; a
round pauses in SUBMITTING between retry budgets so an operator sees a debit still waiting.
"""

from dataclasses import dataclass

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.activity_io import AttemptRef, ProcessorDebitRequest
    from domain.attempt import InvoiceSummary, PaymentReceipt, SubmitPaymentInput
    from domain.audit import AuditEventType
    from domain.authorization import ach_authorization_text
    from domain.errors import ErrorType
    from domain.masking import last4
    from workflows import activity_options as opts
    from workflows.attempt_audit import AttemptAudit
    from workflows.attempt_refusals import SCREEN_REFUSALS, application_cause, error_details
    from workflows.otp_progress import OtpProgress

# Patch: the folded debit (screening, debit, follower start) is scheduled as `submit_screened_debit`,
# a name only workers built with the fold register, where runs recorded before it scheduled the
# folded input as `submit_debit` (issue 20 finding 6: an old worker would drop the screening).
DEBIT_UNDER_OWN_NAME = "debit-under-own-name"

WAITING_FOR_THE_PROCESSOR = (
    "Waiting for the payment processor: the debit is recorded as `submitting` and is "
    "retried with its key until it answers (see `portalpay ops show`)."
)


@dataclass(frozen=True)
class DebitAnswer:
    """The receipt (accepted or declined); or no receipt: another debit of the invoice is in
    flight, or the account screening refused (`refusal`, `message`). Without a receipt nothing
    was debited."""

    receipt: PaymentReceipt | None
    refusal: ErrorType | None = None
    message: str = ""


def debit_request(
    ref: AttemptRef,
    invoice: InvoiceSummary,
    input: SubmitPaymentInput,
    otp: OtpProgress,
    screen_seq: int | None,
) -> ProcessorDebitRequest:
    """The debit as the customer authorized it now, tied to the code check that verified them."""
    details = input.details
    return ProcessorDebitRequest(
        attempt=ref,
        amount_cents=invoice.amount_cents,
        currency=invoice.currency,
        details=details,
        client=input.client,
        authorization_text=ach_authorization_text(
            amount_cents=invoice.amount_cents,
            currency=invoice.currency,
            invoice_number=invoice.number,
            account_last4=last4(details.account_number),
        ),
        authorized_at=workflow.now(),
        otp_audit_event_id=otp.verified_event_id,
        screen_seq=screen_seq,
    )


async def debit_until_answered(request: ProcessorDebitRequest, audit: AttemptAudit) -> DebitAnswer:
    while True:
        try:
            receipt: PaymentReceipt = await workflow.execute_activity(
                debit_activity(request),
                request,
                result_type=PaymentReceipt,
                start_to_close_timeout=opts.DEBIT_TIMEOUT,
                retry_policy=opts.DEBIT_RETRY,
                summary=f"debit {request.amount_cents} {request.currency} for {request.attempt.invoice_id}",
            )
            return DebitAnswer(receipt)
        except ActivityError as err:
            kind, cause = application_cause(err)
            if kind is ErrorType.DEBIT_IN_FLIGHT:
                return DebitAnswer(None)
            if kind in SCREEN_REFUSALS and cause is not None:
                return DebitAnswer(None, kind, cause.message)
            if kind is ErrorType.PROCESSOR_REJECTED and cause is not None:
                # The processor refused the request itself: no debit exists and none ever will.
                reason = f"processor_rejected: {cause.message}"
                await audit.append(
                    AuditEventType.PAYMENT_DECLINED, client=request.client, details={"decline_reason": reason}
                )
                return DebitAnswer(
                    PaymentReceipt(
                        payment_id=str(error_details(cause).get("payment_id", "")),
                        amount_cents=request.amount_cents,
                        currency=request.currency,
                        account_last4=last4(request.details.account_number),
                        method=request.details.method,
                        accepted=False,
                        decline_reason=reason,
                    )
                )
            workflow.logger.warning("debit did not complete; retrying with the payment row's key")
            workflow.set_current_details(WAITING_FOR_THE_PROCESSOR)
            await workflow.sleep(opts.DEBIT_ROUND_PAUSE)


def debit_activity(request: ProcessorDebitRequest) -> str:
    """Which activity takes the debit: the folded input (with `screen_seq`) under its own name."""
    if request.screen_seq is not None and workflow.patched(DEBIT_UNDER_OWN_NAME):
        return opts.SUBMIT_SCREENED_DEBIT
    return opts.SUBMIT_DEBIT
