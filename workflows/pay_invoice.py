"""`PayInvoiceWorkflow`: one customer-portal payment attempt, from payer resolution to receipt.

One state object built in `@workflow.init`; handlers serialise on one lock because each awaits
activities and the next message must see the state the previous one left. Validators refuse
bad input before anything reaches history; handlers re-check under the lock because the state
may have moved while they waited.
"""

import asyncio
from datetime import datetime, timedelta
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.activity_io import (
        AttemptRef,
        AuditEventInput,
        AuditEventRecord,
        CheckCodeRequest,
        CheckCodeResult,
        LockoutRequest,
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
    from domain.audit import AuditEventType
    from domain.authorization import ach_authorization_text
    from domain.channels import Channel
    from domain.errors import ActivityFailureType, RefusalType
    from domain.masking import last4
    from domain.otp_code import OTP_CODE_DIGITS, is_well_formed_code
    from domain.status import CANCELLABLE_STATUSES, PaymentStatus
    from workflows import activity_options as opts
    from workflows import search_attributes as sa
    from workflows.waiting_for import describe_wait

FAILED_DELIVERY_STATUSES = frozenset({"undelivered", "failed"})


def _refuse(kind: RefusalType, message: str, **details: Any) -> ApplicationError:
    return ApplicationError(message, details, type=kind.value, non_retryable=True)


@workflow.defn
class PayInvoiceWorkflow:
    @workflow.init
    def __init__(self, input: PayInvoiceInput) -> None:
        self._input = input
        self._timers = input.timers
        self._status = PaymentStatus.RESOLVING_PAYER
        self._lock = asyncio.Lock()
        self._payer: PayerResolution | None = None
        self._otp_required: bool | None = None
        self._refusal: ApplicationError | None = None
        self._reason: str | None = None
        self._last_action_at = workflow.now()
        self._action_count = 0
        self._send_seq = 0
        self._check_seq = 0
        self._failed_checks = 0
        self._failed_channels: list[Channel] = []
        self._code: CodeChallengeView | None = None
        self._last_sent_at: datetime | None = None
        self._verified_event_id: int | None = None
        self._verified_at: datetime | None = None
        self._cancel: CancelInput | None = None
        self._payment: PaymentReceipt | None = None
        self._audit_seq = 0

    # ---- run ---------------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: PayInvoiceInput) -> AttemptOutcome:
        self._publish()
        try:
            payer = await workflow.execute_activity(
                opts.RESOLVE_PAYER,
                ResolvePayerRequest(
                    invoice_id=input.invoice_id, lockout_seconds=self._timers.lockout_seconds
                ),
                result_type=PayerResolution,
                start_to_close_timeout=opts.DATABASE_TIMEOUT,
                retry_policy=opts.DATABASE_RETRY,
                summary=f"resolve the Customer Portal Payer of {input.invoice_id}",
            )
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type in _RESOLUTION_REFUSALS:
                self._refusal = _refuse(_RESOLUTION_REFUSALS[cause.type], cause.message, **_details(cause))
                self._reason = cause.message
                await workflow.wait_condition(workflow.all_handlers_finished)
                raise self._refusal from None
            raise

        self._payer = payer
        self._failed_checks = payer.prior_failed_checks
        self._otp_required = input.policy.otp_required_for(payer.invoice.kind)
        workflow.upsert_search_attributes(
            [
                sa.CUSTOMER_ID.value_set(payer.customer_id),
                sa.PAYER_CONTACT_ID.value_set(payer.payer_contact_id),
                sa.AMOUNT_CENTS.value_set(payer.invoice.amount_cents),
            ]
        )
        await self._audit(AuditEventType.ATTEMPT_STARTED, client=input.opened_by)
        await self._audit(
            AuditEventType.PAYER_RESOLVED,
            details={
                "payer_name": payer.payer_name,
                "designated_portal_payer": payer.designated,
                "channels": [c.channel.value for c in payer.channels],
            },
        )

        if not self._otp_required:
            await self._audit(AuditEventType.OTP_NOT_REQUIRED, details={"kind": payer.invoice.kind.value})
            self._set_status(PaymentStatus.AWAITING_PAYMENT)
        elif not payer.channels:
            self._reason = (
                "The payer contact has neither a phone nor an email on file; update the contact profile."
            )
            await self._audit(AuditEventType.NO_CONTACT_METHOD, details={"reason": self._reason})
            self._set_status(PaymentStatus.NO_CONTACT_METHOD)
        elif self._failed_checks >= self._timers.max_failed:
            await self._lock_out()
        else:
            self._set_status(PaymentStatus.CHOOSING_CHANNEL)

        await self._wait_until_terminal()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return AttemptOutcome(status=self._status, reason=self._reason, payment=self._payment)

    async def _wait_until_terminal(self) -> None:
        """Race customer actions against the idle and payment-window deadlines (they move)."""
        while not self._status.is_terminal:
            seen = self._action_count

            def woken(seen: int = seen) -> bool:
                return self._status.is_terminal or self._cancel is not None or self._action_count != seen

            deadline = self._deadline()
            timeout = None if deadline is None else max((deadline - workflow.now()).total_seconds(), 0.0)
            try:
                await workflow.wait_condition(woken, timeout=timeout)
            except TimeoutError:
                async with self._lock:
                    deadline = self._deadline()
                    if deadline is not None and workflow.now() >= deadline and not self._status.is_terminal:
                        await self._expire()
                continue
            if self._cancel is not None:
                async with self._lock:
                    if self._status in CANCELLABLE_STATUSES:
                        await self._cancel_attempt(self._cancel)
                    self._cancel = None

    def _deadline(self) -> datetime | None:
        if (
            self._status in (PaymentStatus.RESOLVING_PAYER, PaymentStatus.SUBMITTING)
            or self._status.is_terminal
        ):
            return None  # never expire while our own work is in flight
        idle = self._last_action_at + timedelta(seconds=self._timers.idle_seconds)
        if self._status is PaymentStatus.AWAITING_PAYMENT and self._verified_at is not None:
            window = self._verified_at + timedelta(seconds=self._timers.payment_window_seconds)
            return min(idle, window)
        return idle

    async def _expire(self) -> None:
        self._reason = (
            "The payment window after verification closed."
            if self._status is PaymentStatus.AWAITING_PAYMENT and self._otp_required
            else "No customer action for too long."
        )
        await self._audit(
            AuditEventType.ATTEMPT_EXPIRED,
            details={"from_status": self._status.value, "reason": self._reason},
        )
        self._code = None
        self._set_status(PaymentStatus.EXPIRED)

    async def _cancel_attempt(self, cancel: CancelInput) -> None:
        self._reason = cancel.reason
        await self._audit(
            AuditEventType.ATTEMPT_CANCELLED,
            client=cancel.client,
            details={"from_status": self._status.value, "reason": cancel.reason},
        )
        self._code = None
        self._set_status(PaymentStatus.CANCELLED)

    # ---- query -------------------------------------------------------------------------------

    @workflow.query
    def state(self) -> AttemptState:
        info = workflow.info()
        payer = self._payer
        resend_at = None
        if self._last_sent_at is not None:
            resend_at = self._last_sent_at + timedelta(seconds=self._timers.resend_cooldown_seconds)
        idle_at = None
        if not self._status.is_terminal:
            idle_at = self._last_action_at + timedelta(seconds=self._timers.idle_seconds)
        due_by = None
        if self._verified_at is not None and self._otp_required:
            due_by = self._verified_at + timedelta(seconds=self._timers.payment_window_seconds)
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
            sends_remaining=max(self._timers.max_sends - self._send_seq, 0),
            code=self._code,
            resend_available_at=resend_at,
            idle_expires_at=idle_at,
            payment_due_by=due_by,
            payment=self._payment,
            reason=self._reason,
            waiting_for=self._waiting_for(),
        )

    # ---- open --------------------------------------------------------------------------------

    @workflow.update
    async def open_session(self, client: ClientContext) -> AttemptState:
        """Join-or-start target: answers once the payer is resolved (or the attempt refused)."""
        self._touch()
        joined_after_resolution = self._status is not PaymentStatus.RESOLVING_PAYER
        await workflow.wait_condition(
            lambda: self._status is not PaymentStatus.RESOLVING_PAYER or self._refusal is not None
        )
        if self._refusal is not None:
            raise self._refusal
        # A cancel or expiry may be mid-audit: wait for it, and never let a tab join an attempt
        # that is ending, so the gateway starts a fresh one. An attempt that ends at resolution
        # (no contact method, still locked) is the answer to the open that started it.
        async with self._lock:
            if self._cancel is not None or (joined_after_resolution and self._status.is_terminal):
                raise _refuse(
                    RefusalType.INVALID_STATE,
                    f"the attempt is {self._status.value}",
                    status=self._status.value,
                )
            return self.state()

    # ---- request_code ------------------------------------------------------------------------

    @workflow.update
    async def request_code(self, input: RequestCodeInput) -> RequestCodeResult:
        async with self._lock:
            self._check_can_send(input.channel)
            self._touch()
            payer = self._require_payer()
            self._send_seq += 1
            seq = self._send_seq
            destination = next(c.destination for c in payer.channels if c.channel is input.channel)
            try:
                sent = await workflow.execute_activity(
                    opts.SEND_CODE,
                    SendCodeRequest(
                        attempt=self._ref(),
                        send_seq=seq,
                        channel=input.channel,
                        ttl_seconds=self._timers.code_ttl_seconds,
                        invoice_number=payer.invoice.number,
                    ),
                    result_type=SendCodeResult,
                    start_to_close_timeout=opts.DELIVERY_TIMEOUT,
                    retry_policy=opts.DELIVERY_RETRY,
                    summary=f"send code #{seq} by {input.channel.value} to {destination}",
                )
            except ActivityError as err:
                await self._delivery_failed(input, seq, destination, err)
            self._code = CodeChallengeView(
                channel=sent.channel,
                destination=sent.destination,
                sent_at=sent.sent_at,
                expires_at=sent.expires_at,
            )
            self._last_sent_at = workflow.now()
            await self._audit(
                AuditEventType.OTP_SENT,
                client=input.client,
                channel=input.channel,
                destination=sent.destination,
                details={
                    "send_seq": seq,
                    "provider": sent.provider,
                    "provider_message_id": sent.provider_message_id,
                    "expires_at": sent.expires_at.isoformat(),
                },
            )
            self._set_status(PaymentStatus.AWAITING_CODE)
            return RequestCodeResult(
                status=self._status,
                channel=sent.channel,
                destination=sent.destination,
                code_expires_at=sent.expires_at,
                resend_available_at=self._last_sent_at
                + timedelta(seconds=self._timers.resend_cooldown_seconds),
            )

    @request_code.validator
    def _validate_request_code(self, input: RequestCodeInput) -> None:
        self._check_can_send(input.channel)

    def _check_can_send(self, channel: Channel) -> None:
        self._require_status(PaymentStatus.CHOOSING_CHANNEL, PaymentStatus.AWAITING_CODE)
        payer = self._require_payer()
        if channel not in {c.channel for c in payer.channels}:
            raise _refuse(RefusalType.CHANNEL_UNAVAILABLE, f"no {channel.value} on file for the payer")
        if channel in self._failed_channels:
            raise _refuse(
                RefusalType.CHANNEL_UNAVAILABLE,
                f"{channel.value} delivery failed for this attempt; use another",
            )
        if self._send_seq >= self._timers.max_sends:
            raise _refuse(RefusalType.TOO_MANY_SENDS, "no more codes can be sent for this attempt")
        # A failed delivery waives the cooldown: the customer never got that code.
        delivered_code = self._code is not None and self._code.channel not in self._failed_channels
        if self._last_sent_at is not None and delivered_code:
            ready_at = self._last_sent_at + timedelta(seconds=self._timers.resend_cooldown_seconds)
            wait = (ready_at - workflow.now()).total_seconds()
            if wait > 0:
                raise _refuse(
                    RefusalType.RESEND_TOO_SOON,
                    "a new code can be asked for shortly",
                    retry_after=max(1, int(-(-wait // 1))),
                )

    async def _delivery_failed(
        self, input: RequestCodeInput, seq: int, destination: str, err: ActivityError
    ) -> NoReturn:
        cause = err.cause
        permanent = (
            isinstance(cause, ApplicationError)
            and cause.type == ActivityFailureType.PERMANENT_DELIVERY_FAILURE.value
        )
        details = _details(cause) if isinstance(cause, ApplicationError) else {}
        if permanent and input.channel not in self._failed_channels:
            self._failed_channels.append(input.channel)
        await self._audit(
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
        if self._code is not None and self._code.channel is input.channel and permanent:
            self._code = None
        self._publish()
        remaining = [
            c.channel.value for c in self._require_payer().channels if c.channel not in self._failed_channels
        ]
        raise _refuse(
            RefusalType.DELIVERY_FAILED,
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
            self._require_status(PaymentStatus.AWAITING_CODE)
            self._touch()
            code = self._code
            if code is None:
                raise _refuse(RefusalType.INVALID_STATE, "no code is outstanding", status=self._status.value)
            if workflow.now() >= code.expires_at:
                return VerifyCodeResult(
                    verified=False,
                    status=self._status,
                    attempts_remaining=self._attempts_remaining(),
                    reason="code_expired",
                )
            self._check_seq += 1
            checked = await workflow.execute_activity(
                opts.CHECK_CODE,
                CheckCodeRequest(
                    attempt=self._ref(), send_seq=self._send_seq, check_seq=self._check_seq, code=input.code
                ),
                result_type=CheckCodeResult,
                start_to_close_timeout=opts.DATABASE_TIMEOUT,
                retry_policy=opts.DATABASE_RETRY,
                summary=f"check code entry #{self._check_seq} against code #{self._send_seq}",
            )
            if checked.ok:
                record = await self._audit(
                    AuditEventType.OTP_VERIFIED,
                    client=input.client,
                    channel=code.channel,
                    destination=code.destination,
                    details={"send_seq": self._send_seq, "check_seq": self._check_seq},
                )
                self._verified_event_id = record.id
                self._verified_at = workflow.now()
                self._code = None
                self._set_status(PaymentStatus.AWAITING_PAYMENT)
                return VerifyCodeResult(
                    verified=True, status=self._status, attempts_remaining=self._attempts_remaining()
                )
            self._failed_checks += 1
            await self._audit(
                AuditEventType.OTP_VERIFY_FAILED,
                client=input.client,
                channel=code.channel,
                destination=code.destination,
                details={
                    "send_seq": self._send_seq,
                    "check_seq": self._check_seq,
                    "reason": checked.reason,
                    "attempts_remaining": self._attempts_remaining(),
                },
            )
            if self._attempts_remaining() == 0:
                await self._lock_out()
            else:
                self._publish()
            return VerifyCodeResult(
                verified=False,
                status=self._status,
                attempts_remaining=self._attempts_remaining(),
                reason=checked.reason,
            )

    @verify_code.validator
    def _validate_verify_code(self, input: VerifyCodeInput) -> None:
        self._require_status(PaymentStatus.AWAITING_CODE)
        if not is_well_formed_code(input.code):
            raise _refuse(RefusalType.INVALID_INPUT, f"the code is {OTP_CODE_DIGITS} digits")

    async def _lock_out(self) -> None:
        locked_until = workflow.now() + timedelta(seconds=self._timers.lockout_seconds)
        await workflow.execute_activity(
            opts.RECORD_LOCKOUT,
            LockoutRequest(invoice_id=self._input.invoice_id, locked_until=locked_until),
            start_to_close_timeout=opts.DATABASE_TIMEOUT,
            retry_policy=opts.DATABASE_RETRY,
            summary=f"lock {self._input.invoice_id} until {locked_until:%H:%M} UTC",
        )
        self._reason = f"Too many wrong codes. Try again after {locked_until.isoformat(timespec='seconds')}."
        await self._audit(
            AuditEventType.OTP_LOCKED,
            details={"failed_checks": self._failed_checks, "locked_until": locked_until.isoformat()},
        )
        self._code = None
        self._set_status(PaymentStatus.LOCKED)

    # ---- submit_payment ----------------------------------------------------------------------

    @workflow.update
    async def submit_payment(self, input: SubmitPaymentInput) -> SubmitPaymentResult:
        async with self._lock:
            self._require_status(PaymentStatus.AWAITING_PAYMENT)
            deadline = self._deadline()
            if deadline is not None and workflow.now() >= deadline:
                await self._expire()
                self._require_status(PaymentStatus.AWAITING_PAYMENT)
            self._touch()
            payer = self._require_payer()
            details = input.details
            account_last4 = last4(details.account_number)
            self._set_status(PaymentStatus.SUBMITTING)
            await self._audit(
                AuditEventType.PAYMENT_SUBMITTED,
                client=input.client,
                details={
                    "method": details.method.value,
                    "amount_cents": payer.invoice.amount_cents,
                    "currency": payer.invoice.currency,
                    "account_type": details.account_type,
                    "account_last4": account_last4,
                    "otp_verified_event_id": self._verified_event_id,
                },
            )
            request = ProcessorDebitRequest(
                attempt=self._ref(),
                idempotency_key=f"{workflow.info().workflow_id}/{workflow.info().run_id}/debit",
                amount_cents=payer.invoice.amount_cents,
                currency=payer.invoice.currency,
                details=details,
                client=input.client,
                authorization_text=ach_authorization_text(
                    amount_cents=payer.invoice.amount_cents,
                    currency=payer.invoice.currency,
                    invoice_number=payer.invoice.number,
                    account_last4=account_last4,
                ),
                authorized_at=workflow.now(),
                otp_audit_event_id=self._verified_event_id,
            )
            receipt = await self._debit(request)
            self._payment = receipt
            if receipt.accepted:
                await self._audit(
                    AuditEventType.PAYMENT_ACCEPTED,
                    client=input.client,
                    details={
                        "payment_id": receipt.payment_id,
                        "processor_reference": receipt.processor_reference,
                    },
                )
                self._set_status(PaymentStatus.PAID)
            else:
                self._reason = f"The bank declined the debit: {receipt.decline_reason}."
                await self._audit(
                    AuditEventType.PAYMENT_DECLINED,
                    client=input.client,
                    details={"payment_id": receipt.payment_id, "decline_reason": receipt.decline_reason},
                )
                self._set_status(PaymentStatus.DECLINED)
            return SubmitPaymentResult(status=self._status, payment=receipt)

    @submit_payment.validator
    def _validate_submit_payment(self, input: SubmitPaymentInput) -> None:
        self._require_status(PaymentStatus.AWAITING_PAYMENT)

    async def _debit(self, request: ProcessorDebitRequest) -> PaymentReceipt:
        """Retry until the processor answers: the idempotency key makes every retry the same debit."""
        while True:
            try:
                receipt: PaymentReceipt = await workflow.execute_activity(
                    opts.SUBMIT_DEBIT,
                    request,
                    result_type=PaymentReceipt,
                    start_to_close_timeout=opts.DEBIT_TIMEOUT,
                    retry_policy=opts.DEBIT_RETRY,
                    summary=f"debit {request.amount_cents} {request.currency} for {request.attempt.invoice_id}",
                )
                return receipt
            except ActivityError as err:
                cause = err.cause
                if isinstance(cause, ApplicationError) and cause.non_retryable:
                    # The processor refused the request itself: no debit exists and none ever will.
                    return PaymentReceipt(
                        payment_id="",
                        amount_cents=request.amount_cents,
                        currency=request.currency,
                        account_last4=last4(request.details.account_number),
                        method=request.details.method,
                        accepted=False,
                        decline_reason=f"processor_rejected: {cause.message}",
                    )
                workflow.logger.warning("debit did not complete; retrying with the same idempotency key")
                await workflow.sleep(opts.DEBIT_ROUND_PAUSE)

    # ---- signals -----------------------------------------------------------------------------

    @workflow.signal
    def cancel(self, input: CancelInput) -> None:
        if self._status in CANCELLABLE_STATUSES:
            self._cancel = input

    @workflow.signal
    async def payment_event(self, event: PaymentEvent) -> None:
        await self._audit(AuditEventType.PAYMENT_EVENT, actor="processor", details=event.model_dump())

    @workflow.signal
    async def delivery_status(self, event: DeliveryStatusEvent) -> None:
        async with self._lock:
            failed = event.status in FAILED_DELIVERY_STATUSES
            await self._audit(
                AuditEventType.OTP_DELIVERY_FAILED if failed else AuditEventType.OTP_DELIVERY_STATUS,
                actor="provider",
                channel=event.channel,
                details={
                    "send_seq": event.send_seq,
                    "status": event.status,
                    "provider_code": event.provider_code,
                },
            )
            if failed and event.channel not in self._failed_channels and not self._status.is_terminal:
                self._failed_channels.append(event.channel)
                if (
                    self._code is not None
                    and self._code.channel is event.channel
                    and event.send_seq == self._send_seq
                ):
                    self._code = None
                self._publish()

    # ---- helpers -----------------------------------------------------------------------------

    def _touch(self) -> None:
        self._last_action_at = workflow.now()
        self._action_count += 1

    def _attempts_remaining(self) -> int:
        return max(self._timers.max_failed - self._failed_checks, 0)

    def _require_status(self, *allowed: PaymentStatus) -> None:
        if self._status not in allowed:
            raise _refuse(
                RefusalType.INVALID_STATE,
                f"not allowed while the attempt is {self._status.value}",
                status=self._status.value,
            )

    def _require_payer(self) -> PayerResolution:
        if self._payer is None:
            raise _refuse(
                RefusalType.INVALID_STATE, "the payer is not resolved yet", status=self._status.value
            )
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
        self._action_count += 1
        self._publish()

    def _publish(self) -> None:
        workflow.upsert_search_attributes([sa.PAYMENT_STATUS.value_set(self._status.value)])
        workflow.set_current_details(self._waiting_for())

    def _waiting_for(self) -> str:
        return describe_wait(
            status=self._status,
            code=self._code,
            attempts_remaining=self._attempts_remaining(),
            failed_channels=self._failed_channels,
            reason=self._reason,
            payment_due_by=(
                self._verified_at + timedelta(seconds=self._timers.payment_window_seconds)
                if self._verified_at is not None and self._otp_required
                else None
            ),
        )

    async def _audit(
        self,
        event_type: AuditEventType,
        *,
        client: ClientContext | None = None,
        actor: str | None = None,
        channel: Channel | None = None,
        destination: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEventRecord:
        info = workflow.info()
        payer = self._payer
        self._audit_seq += 1
        ctx = client or ClientContext(actor=actor or "system")
        if actor is not None:
            ctx = ctx.model_copy(update={"actor": actor})
        event = AuditEventInput(
            event_key=f"{info.workflow_id}/{info.run_id}/{self._audit_seq:04d}",
            event_type=event_type,
            invoice_id=self._input.invoice_id,
            customer_id=payer.customer_id if payer else None,
            payer_contact_id=payer.payer_contact_id if payer else None,
            workflow_id=info.workflow_id,
            run_id=info.run_id,
            channel=channel,
            destination=destination,
            client=ctx,
            details=details or {},
            occurred_at=workflow.now(),
        )
        record: AuditEventRecord = await workflow.execute_activity(
            opts.APPEND_AUDIT_EVENT,
            event,
            result_type=AuditEventRecord,
            start_to_close_timeout=opts.DATABASE_TIMEOUT,
            retry_policy=opts.DATABASE_RETRY,
            summary=f"audit {event_type.value}",
        )
        return record


_RESOLUTION_REFUSALS = {
    ActivityFailureType.INVOICE_NOT_FOUND.value: RefusalType.INVOICE_NOT_FOUND,
    ActivityFailureType.INVOICE_ALREADY_PAID.value: RefusalType.INVOICE_ALREADY_PAID,
    "InvoiceLocked": RefusalType.INVOICE_LOCKED,
}


def _details(err: ApplicationError) -> dict[str, Any]:
    first = err.details[0] if err.details else None
    return dict(first) if isinstance(first, dict) else {}
