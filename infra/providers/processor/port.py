"""The processor interface (SPEC §9, §13): what the attempt, the follower and reconciliation ask of
whoever moves the money — the sandbox service over HTTP (`client.HttpProcessorClient`) or the
company's own bank through NACHA files (`infra.nacha.processor.NachaProcessor`), chosen by
`PROCESSOR`.

- `debit`: submit a debit under an idempotency key (same key and request → the same debit);
- `get_debit`: look a debit up by its id (the follower's "no news by the expected date" question);
- `cancel`: withdraw a debit before it is sent;
- `validate_account`: check an account before its first debit;
- `events_after`: the processor's events after a cursor (reconciliation).

Failures are `ProcessorRejected` (the request itself is refused: never retry) and
`ProcessorUnavailable` (retry with backoff). A processor that can also find a debit by its
idempotency key implements `DebitLookupByKey`.
"""

from typing import Protocol, runtime_checkable

from infra.providers.processor.client import (
    AccountValidation,
    Debit,
    EventPage,
    ProcessorClient,
    ProcessorError,
    ProcessorRejected,
    ProcessorUnavailable,
)

# The one interface, under its name in payment terms; `ProcessorClient` stays for existing imports.
PaymentProcessor = ProcessorClient


@runtime_checkable
class DebitLookupByKey(Protocol):
    async def find_debit(self, idempotency_key: str) -> Debit | None: ...


__all__ = [
    "AccountValidation",
    "Debit",
    "DebitLookupByKey",
    "EventPage",
    "PaymentProcessor",
    "ProcessorError",
    "ProcessorRejected",
    "ProcessorUnavailable",
]
