"""What an attempt shows: the `state` query (every portal answer's body) and the current details
operators read in the Temporal UI, both from the same facts so they always agree."""

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.attempt import AttemptState, PayerResolution, PaymentReceipt
    from domain.attempt_clock import AttemptClock
    from domain.status import PaymentStatus
    from workflows.otp_progress import OtpProgress
    from workflows.waiting_for import describe_wait


def waiting_for(
    status: PaymentStatus,
    otp: OtpProgress,
    clock: AttemptClock,
    otp_required: bool | None,
    reason: str | None,
) -> str:
    return describe_wait(
        status=status,
        code=otp.code,
        attempts_remaining=otp.attempts_remaining(clock),
        failed_channels=otp.failed_channels,
        reason=reason,
        payment_due_by=clock.payment_due_by(otp.verified_at, otp_required),
    )


def attempt_state(
    *,
    invoice_id: str,
    status: PaymentStatus,
    payer: PayerResolution | None,
    otp: OtpProgress,
    clock: AttemptClock,
    otp_required: bool | None,
    last_action_at: datetime,
    payment: PaymentReceipt | None,
    reason: str | None,
) -> AttemptState:
    info = workflow.info()
    return AttemptState(
        workflow_id=info.workflow_id,
        run_id=info.run_id,
        invoice_id=invoice_id,
        status=status,
        otp_required=otp_required,
        invoice=payer.invoice if payer else None,
        customer_id=payer.customer_id if payer else None,
        payer_contact_id=payer.payer_contact_id if payer else None,
        payer_name=payer.payer_name if payer else None,
        channels=list(payer.channels) if payer else [],
        failed_channels=list(otp.failed_channels),
        attempts_remaining=otp.attempts_remaining(clock),
        sends_remaining=otp.sends_remaining(clock),
        code=otp.code,
        resend_available_at=clock.resend_available_at(otp.last_sent_at),
        idle_expires_at=None if status.is_terminal else clock.idle_deadline(last_action_at),
        payment_due_by=clock.payment_due_by(otp.verified_at, otp_required),
        payment=payment,
        reason=reason,
        locked_until=otp.locked_until,
        waiting_for=waiting_for(status, otp, clock, otp_required, reason),
    )
