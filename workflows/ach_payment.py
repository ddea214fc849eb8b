"""`AchPaymentWorkflow`: one accepted ACH debit, from processing to settled, failed or returned (SPEC §9).

Id `ach-payment-<payment_id>`. Events reach it through the `processor_event` signal, usually by
signal-with-start from the webhook intake or reconciliation, so the sender never needs to know
whether it runs. An event id seen before changes nothing; an event that would move the status
backwards (a late `processing` after `settled`) changes nothing. A `returned` that arrives before
its `settled` (reordered or dropped) implies the settlement first. The run ends when the payment
failed, was returned or canceled, or when `ACH_RETURN_WINDOW_DAYS` after settlement have passed;
an event arriving after that starts a new run that records it for staff and changes nothing.
"""

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.ach_payment import (
        AchLifecycleFacts,
        AchPaymentInput,
        AchPaymentOutcome,
        AchStatus,
        ApplyOutcomeRequest,
        ApplyOutcomeResult,
        DebitStatusAnswer,
        DebitStatusRequest,
        LateEventRequest,
        ProcessorEvent,
        moves_forward,
    )
    from workflows import lifecycle_options as opts
    from workflows import search_attributes as sa


def _when(moment: datetime) -> str:
    return moment.strftime("%a %d %b %H:%M UTC")


@workflow.defn
class AchPaymentWorkflow:
    @workflow.init
    def __init__(self, input: AchPaymentInput) -> None:
        self._input = input
        self._pending: list[ProcessorEvent] = []
        self._seen: set[str] = set()
        self._facts: AchLifecycleFacts | None = None
        self._status = AchStatus.PROCESSING
        self._return_code: str | None = None
        self._settled_at: datetime | None = None
        self._next_check: datetime | None = None
        self._changed_at: datetime | None = None

    @workflow.signal
    def processor_event(self, event: ProcessorEvent) -> None:
        if event.id in self._seen:
            return
        self._seen.add(event.id)
        self._pending.append(event)

    @workflow.query
    def status(self) -> AchPaymentOutcome:
        return AchPaymentOutcome(
            payment_id=self._input.payment_id, status=self._status, return_code=self._return_code
        )

    @workflow.run
    async def run(self, input: AchPaymentInput) -> AchPaymentOutcome:
        facts: AchLifecycleFacts = await workflow.execute_activity(
            opts.LOAD_ACH_PAYMENT,
            input,
            result_type=AchLifecycleFacts,
            start_to_close_timeout=opts.LIFECYCLE_TIMEOUT,
            retry_policy=opts.LIFECYCLE_RETRY,
            summary=f"load payment {input.payment_id}",
        )
        self._facts = facts
        self._status = facts.status
        self._settled_at = facts.settled_at
        self._next_check = facts.expected_settlement_at
        already = set(facts.applied_event_ids)
        self._seen |= already
        self._pending = [e for e in self._pending if e.id not in already]
        workflow.upsert_search_attributes(
            [sa.INVOICE_ID.value_set(facts.invoice_id), sa.PAYMENT_ID.value_set(facts.payment_id)]
        )
        window = timedelta(days=facts.return_window_days)
        window_closed = False
        while True:
            self._publish()
            if self._status.is_final:
                break
            now = workflow.now()
            if self._status is AchStatus.SETTLED:
                deadline = (self._settled_at or now) + window
                if now >= deadline:
                    window_closed = True
                    break
            else:
                deadline = self._next_check or now
            if not self._pending:
                try:
                    await workflow.wait_condition(
                        lambda: bool(self._pending), timeout=max(deadline - now, timedelta(0))
                    )
                except TimeoutError:
                    if self._status is AchStatus.PROCESSING:
                        await self._ask_processor()
                    continue
            event = self._pending.pop(0)
            await self._apply(event)

        for event in self._pending:
            target = event.ach_status
            if target is not None and (target is self._status or self._is_behind(target)):
                continue  # the same news again, or older news: nothing to tell
            # It would have changed something: staff see it; the payment does not move.
            await self._record_late(
                event,
                "the return window had closed" if window_closed else f"the payment is {self._status.value}",
            )
        self._pending.clear()
        self._publish(window_closed=window_closed)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return AchPaymentOutcome(
            payment_id=input.payment_id,
            status=self._status,
            return_code=self._return_code,
            window_closed=window_closed,
        )

    async def _ask_processor(self) -> None:
        """The expected date passed without news: ask, and ask again later if still processing."""
        facts = self._require_facts()
        if facts.debit_id:
            answer: DebitStatusAnswer = await workflow.execute_activity(
                opts.CHECK_DEBIT_STATUS,
                DebitStatusRequest(payment_id=facts.payment_id, debit_id=facts.debit_id),
                result_type=DebitStatusAnswer,
                start_to_close_timeout=opts.LIFECYCLE_TIMEOUT,
                retry_policy=opts.LIFECYCLE_RETRY,
                summary="ask the processor: no news by the expected settlement date",
            )
            event = answer.event
            if event is not None and event.id not in self._seen:
                self._seen.add(event.id)
                await self._apply(event)
        self._next_check = workflow.now() + timedelta(seconds=facts.status_check_interval_seconds)

    async def _apply(self, event: ProcessorEvent) -> None:
        target = event.ach_status
        if target is None:
            await self._record_late(event, f"unknown event type {event.type}")
            return
        if target is AchStatus.RETURNED and self._status is AchStatus.PROCESSING:
            # The settlement event was lost or is still on its way: a return implies it.
            await self._move(AchStatus.SETTLED, f"{event.id}#implied-settlement", None, event.occurred_at)
        if not moves_forward(self._status, target):
            # A repeat of the status we have, or an older one arriving late: nothing moves back.
            return
        await self._move(target, event.id, event.return_code, event.occurred_at)

    async def _move(self, target: AchStatus, event_id: str, code: str | None, occurred_at: datetime) -> None:
        request = ApplyOutcomeRequest(
            payment_id=self._input.payment_id,
            status=target,
            event_id=event_id,
            return_code=code,
            occurred_at=occurred_at,
        )
        result: ApplyOutcomeResult = await workflow.execute_activity(
            opts.APPLY_PAYMENT_OUTCOME,
            request,
            result_type=ApplyOutcomeResult,
            start_to_close_timeout=opts.LIFECYCLE_TIMEOUT,
            retry_policy=opts.LIFECYCLE_RETRY,
            summary=f"payment {target.value}" + (f" {code}" if code else ""),
        )
        self._status = result.status
        self._changed_at = workflow.now()
        if target is AchStatus.SETTLED:
            self._settled_at = min(occurred_at, workflow.now())
        if code:
            self._return_code = code
        self._publish()
        if result.changed and target in (AchStatus.FAILED, AchStatus.RETURNED):
            await workflow.execute_activity(
                opts.NOTIFY_PAYMENT_OUTCOME,
                request,
                start_to_close_timeout=opts.LIFECYCLE_TIMEOUT,
                retry_policy=opts.NOTIFY_RETRY,
                summary=f"tell staff and the payer: payment {target.value}",
            )

    async def _record_late(self, event: ProcessorEvent, reason: str) -> None:
        await workflow.execute_activity(
            opts.RECORD_LATE_PROCESSOR_EVENT,
            LateEventRequest(
                payment_id=self._input.payment_id,
                event_id=event.id,
                event_type=event.type,
                return_code=event.return_code,
                reason=reason,
                occurred_at=event.occurred_at,
            ),
            start_to_close_timeout=opts.LIFECYCLE_TIMEOUT,
            retry_policy=opts.LIFECYCLE_RETRY,
            summary=f"record late event {event.type}",
        )

    def _is_behind(self, target: AchStatus) -> bool:
        """An older status than ours (a late `processing`, a `settled` after `returned`): old news."""
        return target is AchStatus.PROCESSING or (
            target is AchStatus.SETTLED and self._status is AchStatus.RETURNED
        )

    def _require_facts(self) -> AchLifecycleFacts:
        assert self._facts is not None
        return self._facts

    def _publish(self, *, window_closed: bool = False) -> None:
        workflow.upsert_search_attributes([sa.PAYMENT_STATUS.value_set(self._status.value.upper())])
        workflow.set_current_details(self._describe(window_closed))

    def _describe(self, window_closed: bool) -> str:
        facts = self._facts
        if self._status is AchStatus.PROCESSING:
            if self._next_check is not None:
                return f"processing, expected to settle by {_when(self._next_check)}"
            return "processing, waiting for the processor"
        if self._status is AchStatus.SETTLED:
            if window_closed:
                return "settled; the return window has closed"
            if self._settled_at is not None and facts is not None:
                until = self._settled_at + timedelta(days=facts.return_window_days)
                return f"settled on {_when(self._settled_at)}; return window open until {_when(until)}"
            return "settled"
        when = f" on {_when(self._changed_at)}" if self._changed_at else ""
        code = f" {self._return_code}" if self._return_code else ""
        return f"{self._status.value}{code}{when}"
