"""The sandbox processor's HTTP API (SPEC §9) and its clock, one process.

`POST /v1/debits` (header `Idempotency-Key`), `GET /v1/debits/{id}`,
`GET /v1/debits?idempotency_key=<key>` (the debit sent under a key, to resolve an unknown outcome), `POST /v1/debits/{id}/cancel`,
`POST /v1/account-validations`, `GET /v1/events?after=<cursor>`. The clock (settlements, failures,
returns) and the webhook deliveries run as background tasks polling the tables, so a restart
resumes where the last process stopped.
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import asyncpg
import httpx
from fastapi import FastAPI, Header, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from domain.routing import is_valid_aba_routing
from infra.settings import Settings
from infra.tls import verifying_context
from infra.webhook_signature import SIGNATURE_HEADER, sign
from sandbox_processor import ledger
from sandbox_processor.settings import ProcessorSettings

log = logging.getLogger(__name__)

Digits = Annotated[str, Field(pattern=r"^[0-9]+$")]


class DebitBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount_cents: int = Field(gt=0, lt=10**11)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    routing_number: Annotated[str, Field(pattern=r"^[0-9]{9}$")]
    account_number: Annotated[str, Field(pattern=r"^[0-9]{4,17}$")]
    account_type: Literal["checking", "savings"] = "checking"
    metadata: dict[str, str] = Field(default_factory=dict, max_length=20)


class ValidationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    routing_number: Annotated[str, Field(pattern=r"^[0-9]{9}$")]
    account_number: Annotated[str, Field(pattern=r"^[0-9]{4,17}$")]


def _error(http_status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=http_status)


class SandboxClock:
    """Background work of the service: advance debits that are due, deliver webhooks with backoff."""

    def __init__(self, settings: ProcessorSettings, pool: asyncpg.Pool, faults: ledger.FaultPlan) -> None:
        self._settings = settings
        self._pool = pool
        self._faults = faults
        self._secret = settings.webhook_secret()
        self._url = settings.effective_processor_webhook_url
        self._http = httpx.AsyncClient(timeout=5.0, verify=verifying_context())

    async def run(self) -> None:
        while True:
            try:
                await ledger.advance_clock(
                    self._pool,
                    self._settings.sandbox_instance,
                    late_return_seconds=self._settings.sandbox_late_return_seconds,
                    faults=self._faults,
                )
                await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception:  # the clock must outlive a database hiccup
                log.exception("sandbox clock tick failed; retrying")
            await asyncio.sleep(self._settings.sandbox_tick_seconds)

    async def deliver_due(self) -> None:
        due = await ledger.due_deliveries(
            self._pool, self._settings.sandbox_instance, newest_first=self._settings.sandbox_webhook_reverse
        )
        for row in due:
            payload = row["payload"]
            body = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
            headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(self._secret, body)}
            try:
                answer = await self._http.post(self._url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                await ledger.mark_failed(
                    self._pool,
                    row["id"],
                    row["attempts"],
                    self._settings.sandbox_webhook_retry_seconds,
                    repr(exc),
                )
                continue
            if 200 <= answer.status_code < 300:
                await ledger.mark_delivered(self._pool, row["id"])
            else:
                await ledger.mark_failed(
                    self._pool,
                    row["id"],
                    row["attempts"],
                    self._settings.sandbox_webhook_retry_seconds,
                    f"HTTP {answer.status_code}",
                )

    async def aclose(self) -> None:
        await self._http.aclose()


def create_processor_app(
    settings: ProcessorSettings | Settings, pool: asyncpg.Pool, *, run_clock: bool = True
) -> FastAPI:
    """The service's app; served in-process (`portalpay dev`, tests) it is handed the product's settings."""
    if isinstance(settings, Settings):
        settings = ProcessorSettings.from_settings(settings)
    faults = ledger.FaultPlan(settings.sandbox_webhook_drop_rate, settings.sandbox_webhook_duplicate_rate)
    instance = settings.sandbox_instance

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        clock = SandboxClock(settings, pool, faults)
        task = asyncio.create_task(clock.run()) if run_clock else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await clock.aclose()

    app = FastAPI(title="PortalPay sandbox processor", lifespan=lifespan)

    @app.post("/v1/debits", status_code=201)
    async def create_debit(
        body: DebitBody,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
    ) -> Any:
        if not idempotency_key:
            return _error(400, "idempotency_key_required", "Idempotency-Key header is required")
        if not is_valid_aba_routing(body.routing_number):
            return _error(422, "invalid_routing_number", "routing number fails the ABA checksum")
        try:
            row, created = await ledger.create_debit(
                pool,
                instance,
                idempotency_key=idempotency_key,
                body=body.model_dump(),
                settlement_seconds=settings.sandbox_settlement_seconds,
                faults=faults,
            )
        except ledger.IdempotencyConflict as exc:
            return _error(409, "idempotency_conflict", str(exc))
        return JSONResponse(ledger.debit_view(row), status_code=201 if created else 200)

    @app.get("/v1/debits")
    async def find_debits(idempotency_key: Annotated[str, Query(min_length=1, max_length=255)]) -> Any:
        row = await ledger.find_debit(pool, instance, idempotency_key)
        return {"data": [ledger.debit_view(row)] if row is not None else [], "has_more": False}

    @app.get("/v1/debits/{debit_id}")
    async def get_debit(debit_id: str) -> Any:
        row = await ledger.get_debit(pool, instance, debit_id)
        if row is None:
            return _error(404, "not_found", "no such debit")
        return ledger.debit_view(row)

    @app.post("/v1/debits/{debit_id}/cancel")
    async def cancel_debit(debit_id: str) -> Any:
        row = await ledger.cancel_debit(pool, instance, debit_id, faults)
        if row is None:
            return _error(404, "not_found", "no such debit")
        if row["status"] != "canceled":
            return _error(409, "not_cancelable", f"the debit is {row['status']}", debit_status=row["status"])
        return ledger.debit_view(row)

    @app.post("/v1/account-validations", status_code=201)
    async def validate_account(body: ValidationBody) -> Any:
        if not is_valid_aba_routing(body.routing_number):
            return _error(422, "invalid_routing_number", "routing number fails the ABA checksum")
        row = await ledger.record_validation(pool, body.routing_number, body.account_number)
        return {"id": row["id"], "status": row["outcome"], "reason": row["reason"]}

    @app.get("/v1/events")
    async def list_events(
        after: Annotated[str, Query(max_length=20, pattern=r"^[0-9]*$")] = "0",
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> Any:
        start = int(after or "0")
        data = await ledger.events_after(pool, instance, start, limit + 1)
        more = len(data) > limit
        data = data[:limit]
        cursor = str(data[-1]["seq"]) if data else str(start)
        return {"data": data, "next_cursor": cursor, "has_more": more}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
