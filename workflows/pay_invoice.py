"""`PayInvoiceWorkflow`: one customer-portal payment attempt, from payer resolution to receipt.

One state object built in `@workflow.init`; handlers serialise on one lock because each awaits
activities and the next message must see the state the previous one left. Validators refuse
bad input before anything reaches history; handlers re-check under the lock because the state
may have moved while they waited (a cancel, the idle deadline).

The OTP policy and every timer come from the first activity's result (the worker's settings),
never from the input: whoever can start a workflow cannot weaken them. A status is set before
the audit row that records it is awaited, so no handler can stop halfway with the state behind.
"""

import asyncio
import functools
from datetime import datetime
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.activity_io import (
        AttemptRef,
        CheckCodeRequest,
        CheckCodeResult,
        ProcessorDebitRequest,
        ResolvePayerRequest,
        SendCodeRequest,
        SendCodeResult,
    )
    from domain.attempt import (
        AttemptOutcome,
        AttemptState,
        CancelInput,
        ClientContext,
        CodeChallengeView,
        DeliveryStatusEvent,
        PayerResolution,
        PayInvoiceInput,
        PaymentEvent,
        PaymentReceipt,
        RequestCodeInput,
        RequestCodeResult,
        SubmitPaymentInput,
        SubmitPaymentResult,
        VerifyCodeInput,
        VerifyCodeResult,
    )
    from domain.attempt_clock import AttemptClock
    from domain.attempt_reasons import NO_CONTACT_REASON, locked_reason
    from domain.audit import AuditEventType
    from domain.authorization import ach_authorization_text
    from domain.bank_account import CHECK_UNAVAILABLE_MESSAGE, CHECK_UNAVAILABLE_RETRY_AFTER_SECONDS
    from domain.channels import Channel
    from domain.errors import ErrorType
    from domain.masking import last4
    from domain.otp_code import OTP_CODE_DIGITS, is_well_formed_code
    from domain.policy import AttemptTimers
    from domain.status import CANCELLABLE_STATUSES, PaymentStatus
    from workflows import activity_options as opts
    from workflows import payment_lifecycle_steps as lifecycle_steps
    from workflows import search_attributes as sa
    from workflows.attempt_audit import AttemptAudit
    from workflows.waiting_for import describe_wait

FAILED_DELIVERY_STATUSES = frozenset({"undelivered", "failed"})
# Refusals an activity raises at resolution that the attempt passes on to whoever opened it.
RESOLUTION_REFUSALS = frozenset(
    {ErrorType.INVOICE_NOT_FOUND, ErrorType.INVOICE_ALREADY_PAID, ErrorType.INVOICE_LOCKED}
)
OPERATOR_CANCEL_REASON = "cancelled in Temporal by an operator"
# Patch: `submit_debit` screens the bank account and starts the payment's AchPaymentWorkflow, where
# earlier runs scheduled `screen_bank_account` before it and `begin_payment_lifecycle` after it.
DEBIT_SCREENS_AND_FOLLOWS = "debit-screens-and-follows"
# Patch: the folded debit is scheduled as `submit_screened_debit`, a name only workers built with the
# fold register, where runs recorded before it scheduled the folded input as `submit_debit`.
DEBIT_UNDER_OWN_NAME = "debit-under-own-name"
_SCREEN_REFUSALS = frozenset(
    {
        ErrorType.BANK_ACCOUNT_BLOCKED.value,
        ErrorType.ACCOUNT_VALIDATION_FAILED.value,
        ErrorType.ACCOUNT_CHECK_UNAVAILABLE.value,
    }
)


def _refuse(kind: ErrorType, message: str, **details: Any) -> ApplicationError:
    return ApplicationError(message, details, type=kind.value, non_retryable=True)


@workflow.defn
class PayInvoiceWorkflow:
    @workflow.init
    def __init__(self, input: PayInvoiceInput) -> None:
        self._input = input
        self._screen_seq = 0
        self._status = PaymentStatus.RESOLVING_PAYER
        # The starter sets PaymentStatus and StatusSince when it starts the run.
        self._published_status = PaymentStatus.RESOLVING_PAYER
        self._lock = asyncio.Lock()
        self._payer: PayerResolution | None = None
        # Until resolution the clock only serves the query; no deadline runs before it.
        self._clock = AttemptClock(AttemptTimers())
        self._otp_required: bool | None = None
        self._refusal: ApplicationError | None = None
        self._reason: str | None = None
        self._last_action_at = workflow.now()
        self._send_seq = 0
        self._check_seq = 0
        self._failed_checks = 0
        self._failed_channels: list[Channel] = []
        self._code: CodeChallengeView | None = None
        self._last_sent_at: datetime | None = None
        self._verified_event_id: int | None = None
        self._verified_at: datetime | None = None
        self._locked_until: datetime | None = None
        self._cancel: CancelInput | None = None
        self._payment: PaymentReceipt | None = None
        self._audit = AttemptAudit(input.invoice_id)

    # ---- run ---------------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: PayInvoiceInput) -> AttemptOutcome:
        self._publish()
        try:
            if await self._resolve(input):
                await self._wait_until_terminal()
        except asyncio.CancelledError:
            # A Cancel from the Temporal UI or CLI is the normal audited cancel: a debit in
            # flight finishes first (its handler is not cancelled), and the run completes.
            await self._cancel_from_temporal()
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._refusal is not None:
            raise self._refusal
        return AttemptOutcome(status=self._status, reason=self._reason, payment=self._payment)

    async def _resolve(self, input: PayInvoiceInput) -> bool:
        """Resolve the payer and the worker's rules; False when the attempt ends at resolution."""
        try:
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
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type in RESOLUTION_REFUSALS:
                self._refusal = _refuse(ErrorType(cause.type), cause.message, **_details(cause))
                self._reason = cause.message
                return False
            raise
        # The activity wrote the opening rows (and a lockout earned earlier) with the resolution.
        self._payer = payer
        self._clock = AttemptClock(payer.timers)
        self._failed_checks = payer.prior_failed_checks
        self._otp_required = payer.otp_required
        self._audit.resolved(payer)
        status = payer.opening_status
        if status is PaymentStatus.NO_CONTACT_METHOD:
            self._reason = NO_CONTACT_REASON
        elif status is PaymentStatus.LOCKED:
            self._locked_until = payer.locked_until
            self._reason = locked_reason(payer.locked_until)
        self._set_status(status)
        return True

    async def _wait_until_terminal(self) -> None:
        """Race customer actions against the attempt's deadline with one timer (updatable-timer).

        An action that moves the deadline later does not restart the timer: when it fires, the
        deadline is recomputed and a timer for the remainder starts. Only an earlier deadline, a
        cancel or the end wakes the loop.
        """
        while not self._status.is_terminal:
            armed = self._deadline()
            timeout = None if armed is None else max((armed - workflow.now()).total_seconds(), 0.0)
            try:
                await workflow.wait_condition(functools.partial(self._must_wake, armed), timeout=timeout)
            except TimeoutError:
                async with self._lock:
                    await self._expire_if_due()
                continue
            if self._cancel is not None:
                async with self._lock:
                    if self._status in CANCELLABLE_STATUSES:
                        await self._cancel_attempt(self._cancel)

    def _must_wake(self, armed: datetime | None) -> bool:
        if self._status.is_terminal or (self._cancel is not None and self._status in CANCELLABLE_STATUSES):
            return True
        current = self._deadline()
        return current is not None and (armed is None or current < armed)

    def _deadline(self) -> datetime | None:
        return self._clock.expiry_deadline(
            self._status,
            last_action_at=self._last_action_at,
            verified_at=self._verified_at,
            otp_required=self._otp_required,
        )

    async def _expire_if_due(self) -> bool:
        deadline = self._deadline()
        if deadline is None or workflow.now() < deadline:
            return False
        self._reason = (
            "The payment window after verification closed."
            if self._status is PaymentStatus.AWAITING_PAYMENT and self._otp_required
            else "No customer action for too long."
        )
        from_status = self._status
        self._code = None
        self._set_status(PaymentStatus.EXPIRED)
        await self._record(
            AuditEventType.ATTEMPT_EXPIRED, details={"from_status": from_status.value, "reason": self._reason}
        )
        return True

    async def _cancel_attempt(self, cancel: CancelInput) -> None:
        self._reason = cancel.reason
        from_status = self._status
        self._code = None
        self._set_status(PaymentStatus.CANCELLED)
        await self._record(
            AuditEventType.ATTEMPT_CANCELLED,
            client=cancel.client,
            details={"from_status": from_status.value, "reason": cancel.reason},
        )

    async def _cancel_from_temporal(self) -> None:
        self._cancel = self._cancel or CancelInput(
            reason=OPERATOR_CANCEL_REASON, client=ClientContext(actor="operator")
        )
        async with self._lock:  # a debit in flight holds the lock until the processor answers
            if self._status in CANCELLABLE_STATUSES:
                await self._cancel_attempt(self._cancel)

    # ---- query -------------------------------------------------------------------------------

    @workflow.query
    def state(self) -> AttemptState:
        info = workflow.info()
        payer = self._payer
        return AttemptState(
            workflow_id=info.workflow_id,
            run_id=info.run_id,
            invoice_id=self._input.invoice_id,
            status=self._status,
            otp_required=self._otp_required,
            invoice=payer.invoice if payer else None,
            customer_id=payer.customer_id if payer else None,
            payer_contact_id=payer.payer_contact_id if payer else None,
            payer_name=payer.payer_name if payer else None,
            channels=list(payer.channels) if payer else [],
            failed_channels=list(self._failed_channels),
            attempts_remaining=self._attempts_remaining(),
            sends_remaining=max(self._clock.timers.max_sends - self._send_seq, 0),
            code=self._code,
            resend_available_at=self._clock.resend_available_at(self._last_sent_at),
            idle_expires_at=(
                None if self._status.is_terminal else self._clock.idle_deadline(self._last_action_at)
            ),
            payment_due_by=self._clock.payment_due_by(self._verified_at, self._otp_required),
            payment=self._payment,
            reason=self._reason,
            locked_until=self._locked_until,
            waiting_for=self._waiting_for(),
        )

    # ---- open --------------------------------------------------------------------------------

    @workflow.update
    async def open_session(self, client: ClientContext) -> AttemptState:
        """Join-or-start target: answers once the payer is resolved (or the attempt refused)."""
        joined_after_resolution = self._status is not PaymentStatus.RESOLVING_PAYER
        await workflow.wait_condition(
            lambda: self._status is not PaymentStatus.RESOLVING_PAYER or self._refusal is not None
        )
        if self._refusal is not None:
            raise self._refusal
        # Never let a tab join an attempt that is ending, so the gateway starts a fresh one. An
        # attempt that ends at resolution (no contact method, still locked) answers the open
        # that started it.
        async with self._lock:
            if self._cancel is not None or (joined_after_resolution and self._status.is_terminal):
                raise _refuse(
                    ErrorType.INVALID_STATE, f"the attempt is {self._status.value}", status=self._status.value
                )
            return self.state()

    # ---- request_code ------------------------------------------------------------------------

    @workflow.update
    async def request_code(self, input: RequestCodeInput) -> RequestCodeResult:
        async with self._lock:
            await self._refuse_if_ended()
            self._check_can_send(input.channel)
            self._touch()
            payer = self._require_payer()
            self._send_seq += 1
            seq = self._send_seq
            destination = next(c.destination for c in payer.channels if c.channel is input.channel)
            try:
                sent: SendCodeResult = await workflow.execute_activity(
                    opts.SEND_CODE,
                    SendCodeRequest(
                        attempt=self._ref(),
                        send_seq=seq,
                        channel=input.channel,
                        ttl_seconds=self._clock.timers.code_ttl_seconds,
                        invoice_number=payer.invoice.number,
                        contact_version=payer.contact_version,
                        client=input.client,
                    ),
                    result_type=SendCodeResult,
                    start_to_close_timeout=opts.DELIVERY_TIMEOUT,
                    retry_policy=opts.DELIVERY_RETRY,
                    summary=f"send code #{seq} by {input.channel.value} to {destination}",
                )
            except ActivityError as err:
                await self._send_failed(input, seq, destination, err)
            self._code = CodeChallengeView(
                send_seq=seq,
                channel=sent.channel,
                destination=sent.destination,
                sent_at=sent.sent_at,
                expires_at=sent.expires_at,
            )
            self._last_sent_at = workflow.now()
            self._set_status(PaymentStatus.AWAITING_CODE)  # OTP_SENT was written with the send
            resend_at = self._clock.resend_available_at(self._last_sent_at)
            assert resend_at is not None
            return RequestCodeResult(
                status=self._status,
                channel=sent.channel,
                destination=sent.destination,
                code_expires_at=sent.expires_at,
                resend_available_at=resend_at,
            )

    @request_code.validator
    def _validate_request_code(self, input: RequestCodeInput) -> None:
        self._refuse_if_cancelling()
        self._check_can_send(input.channel)

    def _check_can_send(self, channel: Channel) -> None:
        self._require_status(PaymentStatus.CHOOSING_CHANNEL, PaymentStatus.AWAITING_CODE)
        payer = self._require_payer()
        if channel not in {c.channel for c in payer.channels}:
            raise _refuse(ErrorType.CHANNEL_UNAVAILABLE, f"no {channel.value} on file for the payer")
        if channel in self._failed_channels:
            raise _refuse(
                ErrorType.CHANNEL_UNAVAILABLE,
                f"{channel.value} delivery failed for this attempt; use another",
            )
        if self._send_seq >= self._clock.timers.max_sends:
            raise _refuse(ErrorType.TOO_MANY_SENDS, "no more codes can be sent for this attempt")
        # A failed delivery waives the cooldown: the customer never got that code.
        delivered_code = self._code is not None and self._code.channel not in self._failed_channels
        ready_at = self._clock.resend_available_at(self._last_sent_at)
        if ready_at is not None and delivered_code:
            wait = (ready_at - workflow.now()).total_seconds()
            if wait > 0:
                raise _refuse(
                    ErrorType.RESEND_TOO_SOON,
                    "a new code can be asked for shortly",
                    retry_after=max(1, int(-(-wait // 1))),
                )

    async def _send_failed(
        self, input: RequestCodeInput, seq: int, destination: str, err: ActivityError
    ) -> NoReturn:
        """A send that did not happen; the code the customer already has stays good (SPEC §11)."""
        cause = err.cause
        kind = cause.type if isinstance(cause, ApplicationError) else None
        details = _details(cause) if isinstance(cause, ApplicationError) else {}
        if kind in (ErrorType.TOO_MANY_SENDS, ErrorType.RESEND_TOO_SOON):
            # The caps kept in PostgreSQL across attempts refused it: nothing was sent.
            self._send_seq -= 1
            await self._record(
                AuditEventType.OTP_SEND_REFUSED,
                client=input.client,
                channel=input.channel,
                destination=destination,
                details={"scope": details.get("scope"), "retry_after": details.get("retry_after")},
            )
            assert isinstance(cause, ApplicationError)
            raise _refuse(ErrorType(kind), cause.message, **details)
        if kind == ErrorType.CONTACT_CHANGED:
            # Staff changed the payer or its details: this attempt's offer is stale.
            self._cancel = CancelInput(reason="The payer's contact details changed; open the link again.")
            await self._cancel_attempt(self._cancel)
            raise _refuse(
                ErrorType.CONTACT_CHANGED, "the payer's contact details changed", status=self._status.value
            )
        permanent = kind == ErrorType.PERMANENT_DELIVERY_FAILURE
        if permanent and input.channel not in self._failed_channels:
            self._failed_channels.append(input.channel)
        self._publish()
        await self._record(
            AuditEventType.OTP_DELIVERY_FAILED,
            client=input.client,
            channel=input.channel,
            destination=destination,
            details={
                "send_seq": seq,
                "permanent": permanent,
                "provider": details.get("provider"),
                "provider_code": details.get("provider_code"),
            },
        )
        remaining = [
            c.channel.value for c in self._require_payer().channels if c.channel not in self._failed_channels
        ]
        raise _refuse(
            ErrorType.DELIVERY_FAILED,
            f"the code could not be delivered by {input.channel.value}",
            channel=input.channel.value,
            permanent=permanent,
            remaining_channels=remaining,
            status=self._status.value,
        )

    # ---- verify_code -------------------------------------------------------------------------

    @workflow.update
    async def verify_code(self, input: VerifyCodeInput) -> VerifyCodeResult:
        async with self._lock:
            await self._refuse_if_ended()
            self._require_status(PaymentStatus.AWAITING_CODE)
            code = self._code
            if code is None:
                # Not a guess: there is nothing to guess against (SPEC §11).
                raise _refuse(ErrorType.INVALID_STATE, "no code is outstanding", status=self._status.value)
            self._touch()
            if workflow.now() >= code.expires_at:
                return VerifyCodeResult(
                    verified=False,
                    status=self._status,
                    attempts_remaining=self._attempts_remaining(),
                    reason="code_expired",
                )
            self._check_seq += 1
            locking = self._attempts_remaining() == 1
            checked = await self._check_code(input, code, locking)
            # The verdict's audit row (and a lockout it earned) was written with the check.
            if checked.ok:
                self._verified_at = workflow.now()
                self._verified_event_id = checked.audit_event_id
                self._code = None
                self._set_status(PaymentStatus.AWAITING_PAYMENT)
                return VerifyCodeResult(
                    verified=True, status=self._status, attempts_remaining=self._attempts_remaining()
                )
            self._failed_checks += 1
            if checked.locked_until is not None:
                self._locked_until = checked.locked_until
                self._code = None
                self._reason = locked_reason(checked.locked_until)
                self._set_status(PaymentStatus.LOCKED)
            else:
                self._publish()
            return VerifyCodeResult(
                verified=False,
                status=self._status,
                attempts_remaining=self._attempts_remaining(),
                reason=checked.reason,
            )

    async def _check_code(
        self, input: VerifyCodeInput, code: CodeChallengeView, locking: bool
    ) -> CheckCodeResult:
        """The check, bounded (the customer waits on it under the lock): a database that does not
        answer in time judged no guess, so the customer is asked to try again and nothing counts."""
        try:
            checked: CheckCodeResult = await workflow.execute_activity(
                opts.CHECK_CODE,
                CheckCodeRequest(
                    attempt=self._ref(),
                    send_seq=code.send_seq,
                    check_seq=self._check_seq,
                    code=input.code,
                    client=input.client,
                    channel=code.channel,
                    destination=code.destination,
                    attempts_remaining_if_wrong=self._attempts_remaining() - 1,
                    failed_checks_if_wrong=self._failed_checks + 1,
                    lock_until_if_wrong=self._clock.lockout_until(workflow.now()) if locking else None,
                ),
                result_type=CheckCodeResult,
                start_to_close_timeout=opts.DATABASE_TIMEOUT,
                schedule_to_close_timeout=opts.CUSTOMER_STEP_WITHIN,
                retry_policy=opts.DATABASE_RETRY,
                summary=f"check code entry #{self._check_seq} against code #{code.send_seq}",
            )
        except ActivityError:
            raise _refuse(
                ErrorType.ATTEMPT_BUSY,
                "the code could not be checked just now; please try again",
                status=self._status.value,
                retry_after=opts.CUSTOMER_STEP_RETRY_AFTER_SECONDS,
            ) from None
        return checked

    @verify_code.validator
    def _validate_verify_code(self, input: VerifyCodeInput) -> None:
        self._refuse_if_cancelling()
        self._require_status(PaymentStatus.AWAITING_CODE)
        if not is_well_formed_code(input.code):
            raise _refuse(ErrorType.INVALID_INPUT, f"the code is {OTP_CODE_DIGITS} ASCII digits")

    # ---- submit_payment ----------------------------------------------------------------------

    @workflow.update
    async def submit_payment(self, input: SubmitPaymentInput) -> SubmitPaymentResult:
        async with self._lock:
            await self._refuse_if_ended()
            self._require_status(PaymentStatus.AWAITING_PAYMENT)
            self._touch()
            payer = self._require_payer()
            details = input.details
            # One activity per submission (issue 13): the debit screens the account and starts the
            # payment's lifecycle itself. Runs recorded before that take the three-step path.
            folded = workflow.patched(DEBIT_SCREENS_AND_FOLLOWS)
            fingerprint = None if folded else await self._screen_bank_account(input)
            if folded:
                self._screen_seq += 1
            self._set_status(PaymentStatus.SUBMITTING)
            request = ProcessorDebitRequest(
                attempt=self._ref(),
                amount_cents=payer.invoice.amount_cents,
                currency=payer.invoice.currency,
                details=details,
                client=input.client,
                authorization_text=ach_authorization_text(
                    amount_cents=payer.invoice.amount_cents,
                    currency=payer.invoice.currency,
                    invoice_number=payer.invoice.number,
                    account_last4=last4(details.account_number),
                ),
                authorized_at=workflow.now(),
                otp_audit_event_id=self._verified_event_id,
                screen_seq=self._screen_seq if folded else None,
            )
            receipt = await self._debit(request)
            if receipt is None:
                self._set_status(PaymentStatus.AWAITING_PAYMENT)
                raise _refuse(
                    ErrorType.DEBIT_IN_FLIGHT,
                    "another payment for this invoice is still being confirmed by the bank",
                    status=self._status.value,
                )
            self._payment = receipt
            if receipt.accepted:
                if not folded:
                    await lifecycle_steps.begin_payment_lifecycle(receipt.payment_id, fingerprint)
                self._set_status(PaymentStatus.PAID)
            else:
                self._reason = f"The bank declined the debit: {receipt.decline_reason}."
                self._set_status(PaymentStatus.DECLINED)
            return SubmitPaymentResult(status=self._status, payment=receipt)

    async def _screen_bank_account(self, input: SubmitPaymentInput) -> str:
        """SPEC §9: a blocked account is refused; an unseen one is validated first. Either refusal
        leaves the attempt AWAITING_PAYMENT so the customer can check the numbers or use another."""
        self._screen_seq += 1
        try:
            screen = await lifecycle_steps.screen_bank_account(
                self._ref(), input.details, input.client, self._screen_seq
            )
        except ActivityError:
            raise _refuse(
                ErrorType.ATTEMPT_BUSY,
                CHECK_UNAVAILABLE_MESSAGE,
                status=self._status.value,
                retry_after=CHECK_UNAVAILABLE_RETRY_AFTER_SECONDS,
            ) from None
        if not screen.allowed:
            self._reason = screen.message
            self._publish()
            raise _refuse(screen.refusal, screen.message or "", status=self._status.value)
        return screen.fingerprint

    def _refuse_screened_account(self, kind: ErrorType, message: str) -> NoReturn:
        """The debit activity's screening said no (SPEC §9) and nothing was debited: the attempt
        goes back to AWAITING_PAYMENT so the customer can check the numbers or use another account."""
        if kind is ErrorType.ACCOUNT_CHECK_UNAVAILABLE:
            self._set_status(PaymentStatus.AWAITING_PAYMENT)
            raise _refuse(
                ErrorType.ATTEMPT_BUSY,
                CHECK_UNAVAILABLE_MESSAGE,
                status=self._status.value,
                retry_after=CHECK_UNAVAILABLE_RETRY_AFTER_SECONDS,
            )
        self._reason = message
        self._set_status(PaymentStatus.AWAITING_PAYMENT)
        raise _refuse(kind, message, status=self._status.value)

    @submit_payment.validator
    def _validate_submit_payment(self, input: SubmitPaymentInput) -> None:
        self._refuse_if_cancelling()
        self._require_status(PaymentStatus.AWAITING_PAYMENT)

    async def _debit(self, request: ProcessorDebitRequest) -> PaymentReceipt | None:
        """Retry until the processor answers: the payment row owns the key, so every retry is the
        same debit. The activity writes PAYMENT_SUBMITTED with the row and the outcome's audit row
        with the outcome. None: another debit of this invoice is in flight (nothing was sent)."""
        while True:
            try:
                receipt: PaymentReceipt = await workflow.execute_activity(
                    self._debit_activity(request),
                    request,
                    result_type=PaymentReceipt,
                    start_to_close_timeout=opts.DEBIT_TIMEOUT,
                    retry_policy=opts.DEBIT_RETRY,
                    summary=f"debit {request.amount_cents} {request.currency} for {request.attempt.invoice_id}",
                )
                return receipt
            except ActivityError as err:
                cause = err.cause
                if isinstance(cause, ApplicationError) and cause.type == ErrorType.DEBIT_IN_FLIGHT:
                    return None
                if isinstance(cause, ApplicationError) and cause.type in _SCREEN_REFUSALS:
                    self._refuse_screened_account(ErrorType(cause.type), cause.message)
                if isinstance(cause, ApplicationError) and cause.type == ErrorType.PROCESSOR_REJECTED:
                    # The processor refused the request itself: no debit exists and none ever will.
                    await self._record(
                        AuditEventType.PAYMENT_DECLINED,
                        client=request.client,
                        details={"decline_reason": f"processor_rejected: {cause.message}"},
                    )
                    return PaymentReceipt(
                        payment_id=str(_details(cause).get("payment_id", "")),
                        amount_cents=request.amount_cents,
                        currency=request.currency,
                        account_last4=last4(request.details.account_number),
                        method=request.details.method,
                        accepted=False,
                        decline_reason=f"processor_rejected: {cause.message}",
                    )
                workflow.logger.warning("debit did not complete; retrying with the payment row's key")
                workflow.set_current_details(
                    "Waiting for the payment processor: the debit is recorded as `submitting` and is "
                    "retried with its key until it answers (see `portalpay ops show`)."
                )
                await workflow.sleep(opts.DEBIT_ROUND_PAUSE)

    @staticmethod
    def _debit_activity(request: ProcessorDebitRequest) -> str:
        if request.screen_seq is not None and workflow.patched(DEBIT_UNDER_OWN_NAME):
            return opts.SUBMIT_SCREENED_DEBIT
        return opts.SUBMIT_DEBIT

    # ---- signals -----------------------------------------------------------------------------

    @workflow.signal
    def cancel(self, input: CancelInput) -> None:
        if self._status in CANCELLABLE_STATUSES and self._cancel is None:
            self._cancel = input

    @workflow.signal
    async def payment_event(self, event: PaymentEvent) -> None:
        await self._record_quietly(
            AuditEventType.PAYMENT_EVENT, actor="processor", details=event.model_dump()
        )

    @workflow.signal
    async def delivery_status(self, event: DeliveryStatusEvent) -> None:
        failed = event.status in FAILED_DELIVERY_STATUSES
        if failed and event.channel not in self._failed_channels and not self._status.is_terminal:
            self._failed_channels.append(event.channel)
            if (
                self._code is not None
                and self._code.channel is event.channel
                and event.send_seq == self._code.send_seq
            ):
                self._code = None  # that code never arrived
            self._publish()
        await self._record_quietly(
            AuditEventType.OTP_DELIVERY_FAILED if failed else AuditEventType.OTP_DELIVERY_STATUS,
            actor="provider",
            channel=event.channel,
            details={
                "send_seq": event.send_seq,
                "status": event.status,
                "provider_code": event.provider_code,
            },
        )

    # ---- helpers -----------------------------------------------------------------------------

    def _touch(self) -> None:
        self._last_action_at = workflow.now()

    def _attempts_remaining(self) -> int:
        return max(self._clock.timers.max_failed - self._failed_checks, 0)

    def _refuse_if_cancelling(self) -> None:
        if self._cancel is not None:
            raise _refuse(
                ErrorType.INVALID_STATE, "the attempt is being cancelled", status=self._status.value
            )

    async def _refuse_if_ended(self) -> None:
        """Under the lock: a pending cancel or a passed deadline wins over a late action."""
        self._refuse_if_cancelling()
        if await self._expire_if_due():
            self._require_status()  # always refuses: the attempt just expired

    def _require_status(self, *allowed: PaymentStatus) -> None:
        if self._status not in allowed:
            raise _refuse(
                ErrorType.INVALID_STATE,
                f"not allowed while the attempt is {self._status.value}",
                status=self._status.value,
            )

    def _require_payer(self) -> PayerResolution:
        if self._payer is None:
            raise _refuse(ErrorType.INVALID_STATE, "the payer is not resolved yet", status=self._status.value)
        return self._payer

    def _ref(self) -> AttemptRef:
        payer = self._require_payer()
        info = workflow.info()
        return AttemptRef(
            workflow_id=info.workflow_id,
            run_id=info.run_id,
            invoice_id=self._input.invoice_id,
            customer_id=payer.customer_id,
            payer_contact_id=payer.payer_contact_id,
        )

    def _set_status(self, status: PaymentStatus) -> None:
        self._status = status
        self._publish()

    def _publish(self) -> None:
        """One search-attribute upsert per status change, carrying everything that changed."""
        if self._status is not self._published_status:
            updates: list[SearchAttributeUpdate[Any]] = [
                sa.PAYMENT_STATUS.value_set(self._status.value),
                sa.STATUS_SINCE.value_set(workflow.now()),
            ]
            payer = self._payer
            if payer is not None and self._published_status is PaymentStatus.RESOLVING_PAYER:
                updates += [
                    sa.CUSTOMER_ID.value_set(payer.customer_id),
                    sa.PAYER_CONTACT_ID.value_set(payer.payer_contact_id),
                    sa.AMOUNT_CENTS.value_set(payer.invoice.amount_cents),
                ]
            workflow.upsert_search_attributes(updates)
            self._published_status = self._status
        workflow.set_current_details(self._waiting_for())

    def _waiting_for(self) -> str:
        return describe_wait(
            status=self._status,
            code=self._code,
            attempts_remaining=self._attempts_remaining(),
            failed_channels=self._failed_channels,
            reason=self._reason,
            payment_due_by=self._clock.payment_due_by(self._verified_at, self._otp_required),
        )

    async def _record(self, event_type: AuditEventType, **fields: Any) -> Any:
        """Append one audit row; retried until the database answers (never a small attempt count)."""
        return await self._audit.append(event_type, **fields)

    async def _record_quietly(self, event_type: AuditEventType, **fields: Any) -> None:
        """For signal handlers: a failed audit must never fail the attempt (or a debit in flight)."""
        try:
            await self._audit.append(event_type, **fields)
        except ActivityError:
            workflow.logger.error("could not record %s; the attempt carries on", event_type.value)


def _details(err: ApplicationError) -> dict[str, Any]:
    first = err.details[0] if err.details else None
    return dict(first) if isinstance(first, dict) else {}
