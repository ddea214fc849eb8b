"""An accepted ACH debit's own life (SPEC §9), after the attempt reached PAID.

processing → settled | failed | canceled; settled → returned. A status never moves backwards, so
an event that arrives late or twice is harmless: it is either the status we have or one behind it.
"""

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class AchStatus(StrEnum):
    PROCESSING = "processing"
    SETTLED = "settled"
    FAILED = "failed"
    RETURNED = "returned"
    CANCELED = "canceled"

    @property
    def is_final(self) -> bool:
        return self in (AchStatus.FAILED, AchStatus.RETURNED, AchStatus.CANCELED)

    @property
    def reopens_invoice(self) -> bool:
        return self in (AchStatus.FAILED, AchStatus.RETURNED, AchStatus.CANCELED)


_NEXT: dict[AchStatus, frozenset[AchStatus]] = {
    AchStatus.PROCESSING: frozenset({AchStatus.SETTLED, AchStatus.FAILED, AchStatus.CANCELED}),
    AchStatus.SETTLED: frozenset({AchStatus.RETURNED}),
    AchStatus.FAILED: frozenset(),
    AchStatus.RETURNED: frozenset(),
    AchStatus.CANCELED: frozenset(),
}


def moves_forward(current: AchStatus, new: AchStatus) -> bool:
    """True when `new` is a step forward from `current`; a repeat or a step back is not."""
    return new in _NEXT[current]


def allowed_from(new: AchStatus) -> list[AchStatus]:
    return [s for s, nxt in _NEXT.items() if new in nxt]


# Processor event types (the sandbox's, and what a real adapter maps its own to).
EVENT_STATUS: dict[str, AchStatus] = {
    "debit.processing": AchStatus.PROCESSING,
    "debit.settled": AchStatus.SETTLED,
    "debit.failed": AchStatus.FAILED,
    "debit.returned": AchStatus.RETURNED,
    "debit.canceled": AchStatus.CANCELED,
}


class ProcessorEvent(BaseModel):
    """One event as the processor published it. `id` is unique per event, across retries."""

    id: str
    type: str
    debit_id: str
    payment_id: str | None = None
    status: str
    return_code: str | None = None
    occurred_at: datetime
    seq: int | None = None

    @property
    def ach_status(self) -> AchStatus | None:
        return EVENT_STATUS.get(self.type)


class AchPaymentInput(BaseModel):
    payment_id: str
    # Carried across continue-as-new (all empty on a first run): events not yet handled, the poll
    # count that sets the next interval, and whether the overdue alert went out.
    pending: list[ProcessorEvent] = Field(default_factory=list)
    polls: int = 0
    overdue_alerted: bool = False


class AchLifecycleFacts(BaseModel):
    """Read by the first activity: the payment as stored plus the worker's timers (never the input's)."""

    payment_id: str
    invoice_id: str
    debit_id: str | None
    status: AchStatus
    amount_cents: int
    expected_settlement_at: datetime | None
    settled_at: datetime | None
    return_window_days: int
    # When the expected date passes without news, ask the processor, then again this often.
    status_check_interval_seconds: int = 3600
    # Staff are alerted once when still processing this long after the expected settlement date.
    overdue_margin_seconds: int = 3 * 86400
    # Continue as new past this many history events (0: the workflow's own HISTORY_BOUND, 2,000).
    history_bound: int = 0
    applied_event_ids: list[str] = Field(default_factory=list)


class ApplyOutcomeRequest(BaseModel):
    payment_id: str
    status: AchStatus
    event_id: str
    # The debit the event names; the effect checks it is the payment's and asks the processor.
    debit_id: str | None = None
    return_code: str | None = None
    occurred_at: datetime


class ApplyOutcomeResult(BaseModel):
    status: AchStatus  # the payment's status after the call
    changed: bool
    # The return code as the processor gave it (it wins over the event's claim).
    return_code: str | None = None
    # Set when the processor did not confirm the event for this payment's debit: nothing changed.
    refused: str | None = None


def confirms(processor_status: str, target: AchStatus) -> bool:
    """Does the processor's current status for the debit bear out an event claiming `target`?

    A settlement is borne out by a debit now returned too (it settled first)."""
    if target is AchStatus.SETTLED:
        return processor_status in ("settled", "returned")
    return processor_status == target.value


class LateEventRequest(BaseModel):
    payment_id: str
    event_id: str
    event_type: str
    return_code: str | None = None
    reason: str
    occurred_at: datetime


class DebitStatusRequest(BaseModel):
    payment_id: str
    debit_id: str


class OverdueAlertRequest(BaseModel):
    payment_id: str
    expected_settlement_at: datetime | None
    polls: int


class DebitStatusAnswer(BaseModel):
    """What the processor says when asked; `event` is None while it still has nothing new."""

    event: ProcessorEvent | None = None


class AchPaymentOutcome(BaseModel):
    payment_id: str
    status: AchStatus
    return_code: str | None = None
    window_closed: bool = False


def ach_workflow_id(payment_id: str) -> str:
    return f"ach-payment-{payment_id}"


class ReconcileInput(BaseModel):
    # How far back payments are compared with the processor (the return window plus a margin).
    lookback_days: int = 65


class DeliveredEvent(BaseModel):
    event_id: str
    payment_id: str
    type: str


class StatusMismatch(BaseModel):
    payment_id: str
    ours: str
    processor: str
    return_code: str | None = None


class RefusedEvent(BaseModel):
    """An event the processor did not bear out: a forged row or signal, or another debit's event."""

    event_id: str
    payment_id: str
    type: str
    source: str  # webhook | reconciliation | signal
    reason: str


class ReconcileReport(BaseModel):
    run_key: str
    cursor_from: str
    cursor_to: str
    events_seen: int = 0
    delivered: list[DeliveredEvent] = Field(default_factory=list)
    unknown_events: list[str] = Field(default_factory=list)
    payments_checked: int = 0
    mismatches: list[StatusMismatch] = Field(default_factory=list)
    # `submitting` rows no run owns any more, settled at the processor by their key (issue 20).
    orphans_resolved: list[str] = Field(default_factory=list)
    # SPEC §9 "whatever fails": events no payment of ours matches (skipped, marked; counted and the
    # first ids named), events refused because the processor did not confirm them, mismatches
    # repaired by delivering the processor's own status, and followers restarted.
    unknown_event_count: int = 0
    refused: list[RefusedEvent] = Field(default_factory=list)
    repaired: list[StatusMismatch] = Field(default_factory=list)
    followers_restarted: list[str] = Field(default_factory=list)
