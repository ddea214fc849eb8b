"""The attempt's two steps into the payment lifecycle (SPEC §9) as attempts recorded before the
`debit-screens-and-follows` patch took them: screen the bank account before the debit, and hand an
accepted debit to its `AchPaymentWorkflow`. Newer attempts have `submit_debit` do both; these stay
for the histories that scheduled them (docs/versioning.md)."""

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.activity_io import AttemptRef
    from domain.attempt import ClientContext, PaymentDetails, SubmitPaymentInput
    from domain.bank_account import BeginLifecycleRequest, ScreenAccountRequest, ScreenAccountResult
    from domain.status import PaymentStatus
    from workflows import lifecycle_options as opts
    from workflows.attempt_refusals import account_check_unavailable


async def screen_bank_account(
    ref: AttemptRef, details: PaymentDetails, client: ClientContext, seq: int
) -> ScreenAccountResult:
    result: ScreenAccountResult = await workflow.execute_activity(
        opts.SCREEN_BANK_ACCOUNT,
        ScreenAccountRequest(
            attempt=ref,
            routing_number=details.routing_number,
            account_number=details.account_number,
            screen_seq=seq,
            client=client,
        ),
        result_type=ScreenAccountResult,
        start_to_close_timeout=opts.SCREEN_TIMEOUT,
        retry_policy=opts.SCREEN_RETRY,
        summary="check the bank account: blocklist, then validation if not seen before",
    )
    return result


async def screen_or_refuse(
    ref: AttemptRef, input: SubmitPaymentInput, seq: int, status: PaymentStatus
) -> ScreenAccountResult:
    """SPEC §9 before the debit: a blocked account is refused, an unseen one validated first. A
    screening that could not run answers "try again shortly"; nothing was debited."""
    try:
        return await screen_bank_account(ref, input.details, input.client, seq)
    except ActivityError:
        raise account_check_unavailable(status) from None


async def begin_payment_lifecycle(payment_id: str, fingerprint: str | None) -> None:
    await workflow.execute_activity(
        opts.BEGIN_PAYMENT_LIFECYCLE,
        BeginLifecycleRequest(payment_id=payment_id, bank_fingerprint=fingerprint),
        start_to_close_timeout=opts.LIFECYCLE_TIMEOUT,
        retry_policy=opts.LIFECYCLE_RETRY,
        summary=f"payment {payment_id} processing: invoice pending, settlement followed",
    )
