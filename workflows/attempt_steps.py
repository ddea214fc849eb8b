"""The attempt's activities as the workflow schedules them: resolve the payer, send a code, check
an entry (the debit is in `debit_rounds.py`).

Each call carries what makes its effect idempotent (the run, the send's and the check's sequence
numbers) and the summary an operator reads in the Temporal UI (masked destination, which code).
"""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.activity_io import (
        AttemptRef,
        CheckCodeRequest,
        CheckCodeResult,
        ResolvePayerRequest,
        SendCodeRequest,
        SendCodeResult,
    )
    from domain.attempt import (
        CodeChallengeView,
        PayerResolution,
        PayInvoiceInput,
        RequestCodeInput,
        VerifyCodeInput,
    )
    from domain.attempt_clock import AttemptClock
    from workflows import activity_options as opts
    from workflows.otp_progress import OtpProgress


async def resolve_payer(input: PayInvoiceInput) -> PayerResolution:
    """The payer, the invoice and the worker's rules; the activity writes the opening audit rows."""
    payer: PayerResolution = await workflow.execute_activity(
        opts.RESOLVE_PAYER,
        ResolvePayerRequest(
            invoice_id=input.invoice_id,
            workflow_id=workflow.info().workflow_id,
            run_id=workflow.info().run_id,
            opened_by=input.opened_by,
        ),
        result_type=PayerResolution,
        start_to_close_timeout=opts.DATABASE_TIMEOUT,
        schedule_to_close_timeout=opts.MUST_FINISH_WITHIN,
        retry_policy=opts.DATABASE_RETRY,
        summary=f"resolve the Customer Portal Payer of {input.invoice_id}",
    )
    return payer


async def send_code(
    ref: AttemptRef, payer: PayerResolution, input: RequestCodeInput, seq: int, clock: AttemptClock
) -> SendCodeResult:
    sent: SendCodeResult = await workflow.execute_activity(
        opts.SEND_CODE,
        SendCodeRequest(
            attempt=ref,
            send_seq=seq,
            channel=input.channel,
            ttl_seconds=clock.timers.code_ttl_seconds,
            invoice_number=payer.invoice.number,
            contact_version=payer.contact_version,
            client=input.client,
        ),
        result_type=SendCodeResult,
        start_to_close_timeout=opts.DELIVERY_TIMEOUT,
        retry_policy=opts.DELIVERY_RETRY,
        summary=f"send code #{seq} by {input.channel.value} to {destination_of(payer, input)}",
    )
    return sent


async def check_code(
    ref: AttemptRef, code: CodeChallengeView, input: VerifyCodeInput, otp: OtpProgress, clock: AttemptClock
) -> CheckCodeResult:
    """One entry checked against the code last sent; the activity writes the verdict's audit row
    and, on the last wrong guess, the lockout (`lock_until_if_wrong`).

    Retried until the database answers (MUST_FINISH_WITHIN), like every step that writes a verdict:
    a check given up on may still have judged the entry (its row written, a guess counted), so
    "nothing was judged, try again" would be a guess the attempt does not know about."""
    remaining = otp.attempts_remaining(clock)
    checked: CheckCodeResult = await workflow.execute_activity(
        opts.CHECK_CODE,
        CheckCodeRequest(
            attempt=ref,
            send_seq=code.send_seq,
            check_seq=otp.check_seq,
            code=input.code,
            client=input.client,
            channel=code.channel,
            destination=code.destination,
            attempts_remaining_if_wrong=remaining - 1,
            failed_checks_if_wrong=otp.failed_checks + 1,
            lock_until_if_wrong=clock.lockout_until(workflow.now()) if remaining == 1 else None,
        ),
        result_type=CheckCodeResult,
        start_to_close_timeout=opts.DATABASE_TIMEOUT,
        schedule_to_close_timeout=opts.MUST_FINISH_WITHIN,
        retry_policy=opts.DATABASE_RETRY,
        summary=f"check code entry #{otp.check_seq} against code #{code.send_seq}",
    )
    return checked


def destination_of(payer: PayerResolution, input: RequestCodeInput) -> str:
    return next(c.destination for c in payer.channels if c.channel is input.channel)
