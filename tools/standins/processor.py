"""An in-process payment processor the tests script: the truth a follower checks events against.

Each debit has the status the test gives it; `move` changes it and publishes the processor's own
event (readable by `events_after`, like the sandbox's `GET /v1/events`). `outage` makes the next
look-ups fail as a processor outage does (`ProcessorUnavailable`). It takes no new debits.
"""

import uuid
from dataclasses import replace
from datetime import UTC, datetime

from domain.ach_payment import ProcessorEvent
from infra.providers.processor.client import (
    AccountValidation,
    Debit,
    EventPage,
    ProcessorRejected,
    ProcessorUnavailable,
)


class ScriptedProcessor:
    name = "scripted"

    def __init__(self) -> None:
        self.cursor_key = f"scripted:{uuid.uuid4().hex}"
        self.debits: dict[str, Debit] = {}
        self.events: list[ProcessorEvent] = []
        self.lookups = 0
        self.failures_left = 0

    def open(
        self, debit_id: str, amount_cents: int, *, status: str = "processing", currency: str = "USD"
    ) -> None:
        self.debits[debit_id] = Debit(
            id=debit_id,
            status=status,
            amount_cents=amount_cents,
            currency=currency,
            decline_reason=None,
            return_code=None,
            expected_settlement_at=None,
            metadata={},
        )

    def move(
        self,
        debit_id: str,
        status: str,
        code: str | None = None,
        *,
        payment_id: str | None = None,
        publish: bool = True,
    ) -> ProcessorEvent:
        """The processor's truth changes; returns the event about it (listed by `events_after`
        unless `publish` is False: a feed that missed it)."""
        self.debits[debit_id] = replace(self.debits[debit_id], status=status, return_code=code)
        event = ProcessorEvent(
            id=f"evt_{uuid.uuid4().hex}",
            type=f"debit.{status}",
            debit_id=debit_id,
            payment_id=payment_id,
            status=status,
            return_code=code,
            occurred_at=datetime.now(UTC),
            seq=len(self.events) + 1,
        )
        if publish:
            self.events.append(event)
        return event

    def outage(self, failing_lookups: int) -> None:
        self.failures_left = failing_lookups

    async def get_debit(self, debit_id: str) -> Debit:
        self.lookups += 1
        if self.failures_left > 0:
            self.failures_left -= 1
            raise ProcessorUnavailable("processor answered 503")
        debit = self.debits.get(debit_id)
        if debit is None:
            raise ProcessorRejected("no such debit", status=404, code="not_found")
        return debit

    async def events_after(self, cursor: str, *, limit: int = 100) -> EventPage:
        start = int(cursor or "0")
        page = self.events[start : start + limit]
        end = start + len(page)
        return EventPage(events=page, next_cursor=str(end), has_more=end < len(self.events))

    async def validate_account(self, *, routing_number: str, account_number: str) -> AccountValidation:
        return AccountValidation(id=f"val_{uuid.uuid4().hex[:12]}", valid=True, reason=None)

    async def debit(self, **_: object) -> Debit:
        raise ProcessorUnavailable("the scripted processor takes no new debits")

    async def cancel(self, debit_id: str) -> Debit:
        return await self.get_debit(debit_id)

    async def find_debit(self, idempotency_key: str) -> Debit | None:
        """Debits here are scripted by id: none was ever sent under a key."""
        return None

    async def aclose(self) -> None:
        return None
