"""The processor interface the worker uses, and its HTTP client for the sandbox service.

A real processor adapter implements `ProcessorClient` with the same calls and the same two
failure classes: `ProcessorRejected` (the processor refused the request itself, a 4xx: never
retry) and `ProcessorUnavailable` (5xx, 429, timeouts, dropped connections: retry with backoff).
A rejection that only says the idempotency key was used before (`is_key_conflict`) is not a
refusal of the debit: its outcome is unknown and is looked up with `find_debit` (SPEC §9).
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx

from domain.ach_payment import ProcessorEvent
from infra.tls import verifying_context


class ProcessorError(Exception):
    pass


# Answers meaning "this key was used before, or is being used now": what became of the debit sent
# under it is not in the answer.
KEY_CONFLICT_CODES = frozenset(
    {"idempotency_conflict", "idempotency_key_in_use", "idempotency_key_reused", "key_in_use", "conflict"}
)


class ProcessorRejected(ProcessorError):
    def __init__(self, message: str, *, status: int, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code

    @property
    def is_key_conflict(self) -> bool:
        """A 409, or any answer naming the key as already used or in use: never a decline."""
        return self.status == 409 or (self.code or "").lower() in KEY_CONFLICT_CODES


class ProcessorUnavailable(ProcessorError):
    pass


@dataclass(frozen=True)
class Debit:
    id: str
    status: str  # declined | processing | settled | failed | returned | canceled
    amount_cents: int
    currency: str
    decline_reason: str | None
    return_code: str | None
    expected_settlement_at: datetime | None
    metadata: dict[str, str]

    @property
    def accepted(self) -> bool:
        return self.status != "declined"


@dataclass(frozen=True)
class AccountValidation:
    id: str
    valid: bool
    reason: str | None


@dataclass(frozen=True)
class EventPage:
    events: list[ProcessorEvent]
    next_cursor: str
    has_more: bool


class ProcessorClient(Protocol):
    name: str
    # Where reconciliation keeps its events cursor: one per processor account.
    cursor_key: str

    async def validate_account(self, *, routing_number: str, account_number: str) -> AccountValidation: ...

    async def debit(
        self,
        *,
        idempotency_key: str,
        amount_cents: int,
        currency: str,
        routing_number: str,
        account_number: str,
        account_type: str,
        metadata: dict[str, str],
    ) -> Debit: ...

    async def get_debit(self, debit_id: str) -> Debit: ...

    async def find_debit(self, idempotency_key: str) -> Debit | None:
        """The debit sent under this key, or None when the processor never received one."""
        ...

    async def cancel(self, debit_id: str) -> Debit: ...

    async def events_after(self, cursor: str, *, limit: int = 100) -> EventPage: ...

    async def aclose(self) -> None: ...


def _debit(body: dict[str, Any]) -> Debit:
    expected = body.get("expected_settlement_at")
    return Debit(
        id=str(body["id"]),
        status=str(body["status"]),
        amount_cents=int(body["amount_cents"]),
        currency=str(body["currency"]),
        decline_reason=body.get("decline_reason"),
        return_code=body.get("return_code"),
        expected_settlement_at=datetime.fromisoformat(expected) if expected else None,
        metadata=dict(body.get("metadata") or {}),
    )


class HttpProcessorClient:
    """Speaks the sandbox service's API (`PROCESSOR_SANDBOX_URL`)."""

    name = "sandbox"

    def __init__(
        self, base_url: str, *, timeout: float = 10.0, transport: httpx.AsyncBaseTransport | None = None
    ):
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=timeout, transport=transport, verify=verifying_context()
        )
        self.cursor_key = f"{self.name}:{base_url.rstrip('/')}"

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            answer = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ProcessorUnavailable(f"processor unreachable: {type(exc).__name__}") from None
        if answer.status_code == 429 or answer.status_code >= 500:
            raise ProcessorUnavailable(f"processor answered {answer.status_code}")
        try:
            body: dict[str, Any] = answer.json()
        except ValueError:
            raise ProcessorUnavailable(f"processor answered {answer.status_code} without JSON") from None
        if answer.status_code >= 400:
            raw = body.get("error")
            error: dict[str, Any] = raw if isinstance(raw, dict) else {}
            raise ProcessorRejected(
                str(error.get("message") or body.get("detail") or f"HTTP {answer.status_code}"),
                status=answer.status_code,
                code=error.get("code"),
            )
        return body

    async def validate_account(self, *, routing_number: str, account_number: str) -> AccountValidation:
        body = await self._call(
            "POST",
            "/v1/account-validations",
            json={"routing_number": routing_number, "account_number": account_number},
        )
        return AccountValidation(
            id=str(body["id"]), valid=body["status"] == "valid", reason=body.get("reason")
        )

    async def debit(
        self,
        *,
        idempotency_key: str,
        amount_cents: int,
        currency: str,
        routing_number: str,
        account_number: str,
        account_type: str,
        metadata: dict[str, str],
    ) -> Debit:
        body = await self._call(
            "POST",
            "/v1/debits",
            headers={"Idempotency-Key": idempotency_key},
            json={
                "amount_cents": amount_cents,
                "currency": currency,
                "routing_number": routing_number,
                "account_number": account_number,
                "account_type": account_type,
                "metadata": metadata,
            },
        )
        return _debit(body)

    async def get_debit(self, debit_id: str) -> Debit:
        return _debit(await self._call("GET", f"/v1/debits/{debit_id}"))

    async def find_debit(self, idempotency_key: str) -> Debit | None:
        body = await self._call("GET", "/v1/debits", params={"idempotency_key": idempotency_key})
        found = body.get("data") or []
        return _debit(found[0]) if found else None

    async def cancel(self, debit_id: str) -> Debit:
        return _debit(await self._call("POST", f"/v1/debits/{debit_id}/cancel"))

    async def events_after(self, cursor: str, *, limit: int = 100) -> EventPage:
        body = await self._call("GET", "/v1/events", params={"after": cursor, "limit": limit})
        return EventPage(
            events=[ProcessorEvent.model_validate(e) for e in body["data"]],
            next_cursor=str(body["next_cursor"]),
            has_more=bool(body["has_more"]),
        )

    async def aclose(self) -> None:
        await self._http.aclose()
