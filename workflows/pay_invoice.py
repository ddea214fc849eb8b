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
from typing import NoReturn

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.attempt import (
        AttemptOutcome,
        AttemptState,
        CancelInput,
        ClientContext,
        CodeChallengeView,
        DeliveryStatusEvent,
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
    from domain.errors import ErrorType
    from domain.otp_code import OTP_CODE_DIGITS, is_well_formed_code
    from domain.status import CANCELLABLE_STATUSES, PaymentStatus
    from workflows import attempt_steps, debit_rounds
    from workflows import payment_lifecycle_steps as lifecycle_steps
    from workflows.attempt_refusals import (
        RESOLUTION_REFUSALS,
        account_check_unavailable,
        application_cause,
        error_details,
        invalid_state,
        refuse,
    )
    from workflows.attempt_session import AttemptSession
    from workflows.attempt_view import attempt_state
    from workflows.debit_rounds import debit_request, debit_until_answered

FAILED_DELIVERY_STATUSES = frozenset({"undelivered", "failed"})
OPERATOR_CANCEL_REASON = "cancelled in Temporal by an operator"
# Patch: `submit_debit` screens the bank account and starts the payment's AchPaymentWorkflow, where
# earlier runs scheduled `screen_bank_account` before it and `begin_payment_lifecycle` after it.
DEBIT_SCREENS_AND_FOLLOWS = "debit-screens-and-follows"
# Patch `debit-under-own-name` (workflows/debit_rounds.py): the folded debit's own activity name.
DEBIT_UNDER_OWN_NAME = debit_rounds.DEBIT_UNDER_OWN_NAME


@workflow.defn
class PayInvoiceWorkflow(AttemptSession):
    @workflow.init
    def __init__(self, input: PayInvoiceInput) -> None:
        super().__init__(input)

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
            payer = await attempt_steps.resolve_payer(input)
        except ActivityError as err:
            kind, cause = application_cause(err)
            if kind in RESOLUTION_REFUSALS and cause is not None:
                self._refusal = refuse(kind, cause.message, **error_details(cause))
                self._reason = cause.message
                return False
            raise
        # The activity wrote the opening rows (and a lockout earned earlier) with the resolution.
        self._payer = payer
        self._clock = AttemptClock(payer.timers)
        self._otp.failed_checks = payer.prior_failed_checks
        self._otp_required = payer.otp_required
        self._audit.resolved(payer)
        status = payer.opening_status
        if status is PaymentStatus.NO_CONTACT_METHOD:
            self._reason = NO_CONTACT_REASON
        elif status is PaymentStatus.LOCKED:
            self._otp.locked_until = payer.locked_until
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

    async def _expire_if_due(self) -> bool:
        deadline = self._deadline()
        if deadline is None or workflow.now() < deadline:
            return False
        self._reason = (
            "The payment window after verification closed."
            if self._status is PaymentStatus.AWAITING_PAYMENT and self._otp_required
            else "No customer action for too long."
        )
        await self._end(PaymentStatus.EXPIRED, AuditEventType.ATTEMPT_EXPIRED, None)
        return True

    async def _cancel_attempt(self, cancel: CancelInput) -> None:
        self._reason = cancel.reason
        await self._end(PaymentStatus.CANCELLED, AuditEventType.ATTEMPT_CANCELLED, cancel.client)

    async def _end(self, status: PaymentStatus, event: AuditEventType, client: ClientContext | None) -> None:
        from_status = self._status
        self._otp.code = None
        self._set_status(status)
        details = {"from_status": from_status.value, "reason": self._reason}
        await self._record(event, **({"client": client} if client else {}), details=details)

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
        return attempt_state(
            invoice_id=self._input.invoice_id,
            status=self._status,
            payer=self._payer,
            otp=self._otp,
            clock=self._clock,
            otp_required=self._otp_required,
            last_action_at=self._last_action_at,
            payment=self._payment,
            reason=self._reason,
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
                raise invalid_state(f"the attempt is {self._status.value}", self._status)
            return self.state()

    # ---- request_code ------------------------------------------------------------------------

    @workflow.update
    async def request_code(self, input: RequestCodeInput) -> RequestCodeResult:
        async with self._lock:
            await self._refuse_if_ended()
            self._check_can_send(input)
            self._touch()
            payer = self._require_payer()
            self._otp.send_seq += 1
            seq = self._otp.send_seq
            try:
                sent = await attempt_steps.send_code(self._ref(), payer, input, seq, self._clock)
            except ActivityError as err:
                await self._send_failed(input, seq, attempt_steps.destination_of(payer, input), err)
            self._otp.code = CodeChallengeView(
                send_seq=seq,
                channel=sent.channel,
                destination=sent.destination,
                sent_at=sent.sent_at,
                expires_at=sent.expires_at,
            )
            self._otp.last_sent_at = workflow.now()
            self._set_status(PaymentStatus.AWAITING_CODE)  # OTP_SENT was written with the send
            resend_at = self._clock.resend_available_at(self._otp.last_sent_at)
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
        self._check_can_send(input)

    def _check_can_send(self, input: RequestCodeInput) -> None:
        self._require_status(PaymentStatus.CHOOSING_CHANNEL, PaymentStatus.AWAITING_CODE)
        self._otp.check_can_send(input.channel, self._require_payer(), self._clock, workflow.now())

    async def _send_failed(
        self, input: RequestCodeInput, seq: int, destination: str, err: ActivityError
    ) -> NoReturn:
        """A send that did not happen; the code the customer already has stays good (SPEC §11)."""
        kind, cause = application_cause(err)
        details = error_details(cause)
        audit = {"client": input.client, "channel": input.channel, "destination": destination}
        if kind in (ErrorType.TOO_MANY_SENDS, ErrorType.RESEND_TOO_SOON) and cause is not None:
            # The caps kept in PostgreSQL across attempts refused it: nothing was sent.
            self._otp.send_seq -= 1
            refused = {"scope": details.get("scope"), "retry_after": details.get("retry_after")}
            await self._record(AuditEventType.OTP_SEND_REFUSED, **audit, details=refused)
            raise refuse(kind, cause.message, **details)
        if kind is ErrorType.CONTACT_CHANGED:
            # Staff changed the payer or its details: this attempt's offer is stale.
            self._cancel = CancelInput(reason="The payer's contact details changed; open the link again.")
            await self._cancel_attempt(self._cancel)
            raise refuse(
                ErrorType.CONTACT_CHANGED, "the payer's contact details changed", status=self._status.value
            )
        permanent = kind is ErrorType.PERMANENT_DELIVERY_FAILURE
        if permanent:
            self._otp.channel_failed(input.channel)
        self._publish()
        failure = {
            "send_seq": seq,
            "permanent": permanent,
            "provider": details.get("provider"),
            "provider_code": details.get("provider_code"),
        }
        await self._record(AuditEventType.OTP_DELIVERY_FAILED, **audit, details=failure)
        raise refuse(
            ErrorType.DELIVERY_FAILED,
            f"the code could not be delivered by {input.channel.value}",
            channel=input.channel.value,
            permanent=permanent,
            remaining_channels=self._otp.channels_left(self._require_payer()),
            status=self._status.value,
        )

    # ---- verify_code -------------------------------------------------------------------------

    @workflow.update
    async def verify_code(self, input: VerifyCodeInput) -> VerifyCodeResult:
        async with self._lock:
            await self._refuse_if_ended()
            self._require_status(PaymentStatus.AWAITING_CODE)
            otp, code = self._otp, self._otp.code
            if code is None:
                # Not a guess: there is nothing to guess against (SPEC §11).
                raise invalid_state("no code is outstanding", self._status)
            self._touch()
            if workflow.now() >= code.expires_at:
                return self._verdict(False, reason="code_expired")
            otp.check_seq += 1
            checked = await attempt_steps.check_code(self._ref(), code, input, otp, self._clock)
            # The verdict's audit row (and a lockout it earned) was written with the check.
            if checked.ok:
                otp.verified_at = workflow.now()
                otp.verified_event_id = checked.audit_event_id
                otp.code = None
                self._set_status(PaymentStatus.AWAITING_PAYMENT)
                return self._verdict(True)
            otp.failed_checks += 1
            if checked.locked_until is not None:
                otp.locked_until = checked.locked_until
                otp.code = None
                self._reason = locked_reason(checked.locked_until)
                self._set_status(PaymentStatus.LOCKED)
            else:
                self._publish()
            return self._verdict(False, reason=checked.reason)

    def _verdict(self, verified: bool, reason: str | None = None) -> VerifyCodeResult:
        remaining = self._otp.attempts_remaining(self._clock)
        if verified:
            return VerifyCodeResult(verified=True, status=self._status, attempts_remaining=remaining)
        return VerifyCodeResult(
            verified=False, status=self._status, attempts_remaining=remaining, reason=reason
        )

    @verify_code.validator
    def _validate_verify_code(self, input: VerifyCodeInput) -> None:
        self._refuse_if_cancelling()
        self._require_status(PaymentStatus.AWAITING_CODE)
        if not is_well_formed_code(input.code):
            raise refuse(ErrorType.INVALID_INPUT, f"the code is {OTP_CODE_DIGITS} ASCII digits")

    # ---- submit_payment ----------------------------------------------------------------------

    @workflow.update
    async def submit_payment(self, input: SubmitPaymentInput) -> SubmitPaymentResult:
        async with self._lock:
            await self._refuse_if_ended()
            self._require_status(PaymentStatus.AWAITING_PAYMENT)
            self._touch()
            if not workflow.patched(DEBIT_SCREENS_AND_FOLLOWS):
                return await self._submit_in_three_steps(input)
            # One activity per submission (issue 13): the debit screens the account and starts the
            # payment's AchPaymentWorkflow itself.
            self._screen_seq += 1
            return self._answer(await self._debit(input, screen_seq=self._screen_seq))

    @submit_payment.validator
    def _validate_submit_payment(self, input: SubmitPaymentInput) -> None:
        self._refuse_if_cancelling()
        self._require_status(PaymentStatus.AWAITING_PAYMENT)

    async def _debit(self, input: SubmitPaymentInput, *, screen_seq: int | None) -> PaymentReceipt:
        """Debit until the processor answers. A screening refusal (SPEC §9) or another debit in
        flight debits nothing: the attempt goes back to AWAITING_PAYMENT so the customer can check
        the numbers, use another account or wait."""
        self._set_status(PaymentStatus.SUBMITTING)
        request = debit_request(self._ref(), self._require_payer().invoice, input, self._otp, screen_seq)
        answer = await debit_until_answered(request, self._audit)
        if answer.receipt is not None:
            self._payment = answer.receipt
            return answer.receipt
        if answer.refusal is ErrorType.ACCOUNT_CHECK_UNAVAILABLE:
            self._set_status(PaymentStatus.AWAITING_PAYMENT)
            raise account_check_unavailable(self._status)
        if answer.refusal is not None:
            self._reason = answer.message
            self._set_status(PaymentStatus.AWAITING_PAYMENT)
            raise refuse(answer.refusal, answer.message, status=self._status.value)
        self._set_status(PaymentStatus.AWAITING_PAYMENT)
        raise refuse(
            ErrorType.DEBIT_IN_FLIGHT,
            "another payment for this invoice is still being confirmed by the bank",
            status=self._status.value,
        )

    def _answer(self, receipt: PaymentReceipt) -> SubmitPaymentResult:
        if receipt.accepted:
            self._set_status(PaymentStatus.PAID)
        else:
            self._reason = f"The bank declined the debit: {receipt.decline_reason}."
            self._set_status(PaymentStatus.DECLINED)
        return SubmitPaymentResult(status=self._status, payment=receipt)

    async def _submit_in_three_steps(self, input: SubmitPaymentInput) -> SubmitPaymentResult:
        """Runs recorded before `debit-screens-and-follows`: screen the account (SPEC §9: a blocked
        one refused, an unseen one validated first), debit, then hand the debit to its lifecycle."""
        self._screen_seq += 1
        screen = await lifecycle_steps.screen_or_refuse(self._ref(), input, self._screen_seq, self._status)
        if not screen.allowed:
            self._reason = screen.message
            self._publish()
            raise refuse(screen.refusal, screen.message or "", status=self._status.value)
        receipt = await self._debit(input, screen_seq=None)
        if receipt.accepted:
            await lifecycle_steps.begin_payment_lifecycle(receipt.payment_id, screen.fingerprint)
        return self._answer(receipt)

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
        if failed and event.channel not in self._otp.failed_channels and not self._status.is_terminal:
            self._otp.delivery_failed(event.channel, event.send_seq)
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

    async def _refuse_if_ended(self) -> None:
        """Under the lock: a pending cancel or a passed deadline wins over a late action."""
        self._refuse_if_cancelling()
        if await self._expire_if_due():
            self._require_status()  # always refuses: the attempt just expired
