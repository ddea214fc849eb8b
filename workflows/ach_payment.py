"""`AchPaymentWorkflow`: one accepted ACH debit, from processing to settled, failed or returned (SPEC §9).

Id `ach-payment-<payment_id>`. Events reach it through the `processor_event` signal, usually by
signal-with-start from the webhook intake or reconciliation, so the sender never needs to know
whether it runs. An event id seen before changes nothing; an event that would move the status
backwards (a late `processing` after `settled`) changes nothing. A `returned` that arrives before
its `settled` (reordered or dropped) implies the settlement first. The run ends when the payment
failed, was returned or canceled, or when `ACH_RETURN_WINDOW_DAYS` after settlement have passed;
an event arriving after that starts a new run that records it for staff and changes nothing.

Whatever fails, it follows the payment to its end: every effect retries without a cap (the
effects are idempotent; a failing one shows as a pending activity in `portalpay ops stuck`), an
event leaves the queue only once its effect returned, a notice nobody can receive is audited by
the notice itself, and a Temporal Cancel does not stop it (the money moves whatever an operator
clicks): the request is noted in the run's details and the follower goes on. With no news it asks
the processor at a growing, jittered interval, alerts staff once when the payment is overdue, and
continues as new before its history passes `HISTORY_BOUND` events.
"""

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, CancelledError
from temporalio.workflow import ActivityCancellationType

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
        OverdueAlertRequest,
        ProcessorEvent,
        moves_forward,
    )
    from workflows import lifecycle_options as opts
    from workflows import search_attributes as sa

T = TypeVar("T")
# A Cancel never interrupts an effect half way: the activity runs on, the follower runs it again.
ABANDON = ActivityCancellationType.ABANDON

# New commands (a reload for the debit id, the overdue alert, continue-as-new) taken by runs
# started after this patch; runs started before replay without them (docs/versioning.md).
FOLLOW_WHATEVER_FAILS = "follower-whatever-fails"
# Continue as new before the history passes this many events (Temporal's hard limit is 51,200;
# a follower's whole 62-day life is normally under 100).
HISTORY_BOUND = 2_000
# Polls grow from the worker's interval, doubling, up to this; each is spread by ±JITTER.
MAX_POLL_INTERVAL = timedelta(hours=24)
JITTER = 0.2


def _when(moment: datetime) -> str:
    return moment.strftime("%a %d %b %H:%M UTC")


@workflow.defn
class AchPaymentWorkflow:
    @workflow.init
    def __init__(self, input: AchPaymentInput) -> None:
        self._input = input
        self._pending: list[ProcessorEvent] = list(input.pending)
        self._seen: set[str] = {e.id for e in input.pending}
        self._facts: AchLifecycleFacts | None = None
        self._status = AchStatus.PROCESSING
        self._return_code: str | None = None
        self._settled_at: datetime | None = None
        self._next_check: datetime | None = None
        self._changed_at: datetime | None = None
        self._polls = input.polls
        self._overdue_alerted = input.overdue_alerted
        self._cancel_requested = False

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
        facts = await self._load(input)
        self._status = facts.status
        self._settled_at = facts.settled_at
        self._next_check = facts.expected_settlement_at
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
                if self._history_full():
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    workflow.continue_as_new(
                        AchPaymentInput(
                            payment_id=input.payment_id,
                            pending=self._pending,
                            polls=self._polls,
                            overdue_alerted=self._overdue_alerted,
                        )
                    )
                try:
                    await workflow.wait_condition(
                        lambda: bool(self._pending), timeout=max(deadline - now, timedelta(0))
                    )
                except TimeoutError:
                    if self._status is AchStatus.PROCESSING:
                        await self._ask_processor()
                    continue
                except asyncio.CancelledError:
                    self._noted_cancel()
                    continue
            # Leaves the queue only once handled: a cancelled or retried step takes it again.
            await self._apply(self._pending[0])
            self._pending.pop(0)

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
        await self._carry_on(lambda: workflow.wait_condition(workflow.all_handlers_finished))
        return AchPaymentOutcome(
            payment_id=input.payment_id,
            status=self._status,
            return_code=self._return_code,
            window_closed=window_closed,
        )

    async def _load(self, input: AchPaymentInput) -> AchLifecycleFacts:
        facts: AchLifecycleFacts = await self._carry_on(
            lambda: workflow.execute_activity(
                opts.LOAD_ACH_PAYMENT,
                AchPaymentInput(payment_id=input.payment_id),
                result_type=AchLifecycleFacts,
                start_to_close_timeout=opts.LIFECYCLE_TIMEOUT,
                cancellation_type=ABANDON,
                retry_policy=opts.FOLLOWER_RETRY,
                summary=f"load payment {input.payment_id}",
            )
        )
        self._facts = facts
        already = set(facts.applied_event_ids)
        self._seen |= already
        self._pending = [e for e in self._pending if e.id not in already]
        return facts

    async def _carry_on(self, step: Callable[[], Awaitable[T]]) -> T:
        """Runs a step to its end: a Cancel request is noted and the step runs again (idempotent)."""
        while True:
            try:
                return await step()
            except asyncio.CancelledError:
                self._noted_cancel()
            except ActivityError as err:
                if not isinstance(err.cause, CancelledError):
                    raise
                self._noted_cancel()  # the activity was cancelled with the run: run it again

    def _noted_cancel(self) -> None:
        if not self._cancel_requested:
            workflow.logger.warning("cancel requested for a payment follower: the payment is still followed")
        self._cancel_requested = True
        # Python 3.11+: clear the task's cancel count, so the next await is not cancelled again.
        task = asyncio.current_task()
        if task is not None and sys.version_info >= (3, 11):
            while task.cancelling():
                task.uncancel()

    def _history_full(self) -> bool:
        info = workflow.info()
        bound = self._require_facts().history_bound or HISTORY_BOUND
        if info.get_current_history_length() < bound and not info.is_continue_as_new_suggested():
            return False
        return workflow.patched(FOLLOW_WHATEVER_FAILS)

    async def _ask_processor(self) -> None:
        """The expected date passed without news: ask, and ask again later (a growing, jittered
        interval) while still processing; tell staff once when it is long overdue."""
        facts = self._require_facts()
        if not facts.debit_id and workflow.patched(FOLLOW_WHATEVER_FAILS):
            # Started by a webhook before the debit's answer was recorded: the id is there by now.
            facts = await self._load(self._input)
        if facts.debit_id:
            answer: DebitStatusAnswer = await self._carry_on(
                lambda: workflow.execute_activity(
                    opts.CHECK_DEBIT_STATUS,
                    DebitStatusRequest(payment_id=facts.payment_id, debit_id=facts.debit_id or ""),
                    result_type=DebitStatusAnswer,
                    start_to_close_timeout=opts.LIFECYCLE_TIMEOUT,
                    cancellation_type=ABANDON,
                    retry_policy=opts.FOLLOWER_RETRY,
                    summary="ask the processor: no news by the expected settlement date",
                )
            )
            event = answer.event
            if event is not None and event.id not in self._seen:
                self._seen.add(event.id)
                await self._apply(event)
        self._polls += 1
        if (
            self._status is AchStatus.PROCESSING
            and self._overdue()
            and workflow.patched(FOLLOW_WHATEVER_FAILS)
        ):
            await self._carry_on(
                lambda: workflow.execute_activity(
                    opts.ALERT_PAYMENT_OVERDUE,
                    OverdueAlertRequest(
                        payment_id=facts.payment_id,
                        expected_settlement_at=facts.expected_settlement_at,
                        polls=self._polls,
                    ),
                    start_to_close_timeout=opts.LIFECYCLE_TIMEOUT,
                    cancellation_type=ABANDON,
                    retry_policy=opts.FOLLOWER_RETRY,
                    summary="tell staff: no outcome long after the expected settlement date",
                )
            )
            self._overdue_alerted = True
        self._next_check = workflow.now() + self._poll_interval(facts)

    def _overdue(self) -> bool:
        facts = self._require_facts()
        if self._overdue_alerted or facts.expected_settlement_at is None:
            return False
        return workflow.now() >= facts.expected_settlement_at + timedelta(
            seconds=facts.overdue_margin_seconds
        )

    def _poll_interval(self, facts: AchLifecycleFacts) -> timedelta:
        base = timedelta(seconds=facts.status_check_interval_seconds)
        grown = min(base * (2 ** min(self._polls - 1, 16)), max(MAX_POLL_INTERVAL, base))
        spread: float = 1 + JITTER * (2 * workflow.random().random() - 1)
        interval: timedelta = grown * spread
        return interval

    async def _apply(self, event: ProcessorEvent) -> None:
        target = event.ach_status
        if target is None:
            await self._record_late(event, f"unknown event type {event.type}")
            return
        if target is AchStatus.RETURNED and self._status is AchStatus.PROCESSING:
            # The settlement event was lost or is still on its way: a return implies it.
            await self._move(
                AchStatus.SETTLED, f"{event.id}#implied-settlement", None, event.occurred_at, event.debit_id
            )
        if not moves_forward(self._status, target):
            # A repeat of the status we have, or an older one arriving late: nothing moves back.
            return
        await self._move(target, event.id, event.return_code, event.occurred_at, event.debit_id)

    async def _move(
        self, target: AchStatus, event_id: str, code: str | None, occurred_at: datetime, debit_id: str
    ) -> None:
        request = ApplyOutcomeRequest(
            payment_id=self._input.payment_id,
            status=target,
            event_id=event_id,
            debit_id=debit_id,
            return_code=code,
            occurred_at=occurred_at,
        )
        result: ApplyOutcomeResult = await self._carry_on(
            lambda: workflow.execute_activity(
                opts.APPLY_PAYMENT_OUTCOME,
                request,
                result_type=ApplyOutcomeResult,
                start_to_close_timeout=opts.LIFECYCLE_TIMEOUT,
                cancellation_type=ABANDON,
                retry_policy=opts.FOLLOWER_RETRY,
                summary=f"payment {target.value}" + (f" {code}" if code else ""),
            )
        )
        self._status = result.status
        if not result.changed:
            return  # already there, or the processor did not bear the event out (refused)
        self._changed_at = workflow.now()
        code = result.return_code or code
        if target is AchStatus.SETTLED:
            self._settled_at = min(occurred_at, workflow.now())
        if code:
            self._return_code = code
        self._publish()
        if target in (AchStatus.FAILED, AchStatus.RETURNED):
            notice = request.model_copy(update={"return_code": code})
            try:
                await self._carry_on(
                    lambda: workflow.execute_activity(
                        opts.NOTIFY_PAYMENT_OUTCOME,
                        notice,
                        start_to_close_timeout=opts.LIFECYCLE_TIMEOUT,
                        cancellation_type=ABANDON,
                        retry_policy=opts.NOTIFY_RETRY,
                        summary=f"tell staff and the payer: payment {target.value}",
                    )
                )
            except ActivityError:
                # The notice audits what it could not deliver; nothing it does stops the follower.
                workflow.logger.warning("payment notice did not complete; the follower goes on")

    async def _record_late(self, event: ProcessorEvent, reason: str) -> None:
        request = LateEventRequest(
            payment_id=self._input.payment_id,
            event_id=event.id,
            event_type=event.type,
            return_code=event.return_code,
            reason=reason,
            occurred_at=event.occurred_at,
        )
        await self._carry_on(
            lambda: workflow.execute_activity(
                opts.RECORD_LATE_PROCESSOR_EVENT,
                request,
                start_to_close_timeout=opts.LIFECYCLE_TIMEOUT,
                cancellation_type=ABANDON,
                retry_policy=opts.FOLLOWER_RETRY,
                summary=f"record late event {event.type}",
            )
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
        text = self._describe_status(window_closed)
        if self._cancel_requested:
            text += " (a cancel was requested; the payment is still followed to its end)"
        return text

    def _describe_status(self, window_closed: bool) -> str:
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
