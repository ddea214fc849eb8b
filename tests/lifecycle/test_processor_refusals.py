"""The processor refusing the request itself (a 4xx), through the real sandbox processor service.

Both refusal paths run the real client, activity and workflow against the session's sandbox service
(tests/conftest.py `processor_url`): only the request on the wire is spoiled on its way out (the
routing number's check digit), so the real service answers its own 422 `invalid_routing_number`.

- The account validation refused: `submit_debit` raises a non-retryable `ProcessorRejected`, the
  workflow declines the attempt (no payment row, no debit).
- The debit refused: the activity records the payment as `declined` with the processor's reason,
  and the service's ledger holds no debit for its key. Neither is retried.
"""

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from domain.channels import Channel
from domain.errors import ErrorType
from domain.status import PaymentStatus
from infra.providers.processor.client import HttpProcessorClient
from starters.workflow_client import AttemptRefused
from tests.conftest import HarnessFactory
from tests.workflow.steps import Attempt, audit_types, new_invoice

# Fails the ABA checksum (GOOD_ROUTING is 011000015): the sandbox service refuses it with a 422.
SPOILED_ROUTING = "011000016"
REFUSAL = "processor_rejected: routing number fails the ABA checksum"


class SpoilRouting(httpx.AsyncBaseTransport):
    """Sends every request to the real service; for `path` with the routing number spoiled."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._inner = httpx.AsyncHTTPTransport()
        self.answers: list[tuple[str, int]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == self._path and request.method == "POST":
            body = json.loads(await request.aread())
            body["routing_number"] = SPOILED_ROUTING
            content = json.dumps(body).encode()
            headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
            request = httpx.Request(request.method, request.url, headers=headers, content=content)
        response = await self._inner.handle_async_request(request)
        self.answers.append((request.url.path, response.status_code))
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def spoiling(processor_url: str, transport: SpoilRouting) -> Callable[[Any], Any]:
    def wrap(deps: Any) -> Any:
        deps.processor = HttpProcessorClient(processor_url, timeout=10, transport=transport)
        return deps

    return wrap


@pytest.fixture
async def spoiled() -> AsyncIterator[Callable[[str], SpoilRouting]]:
    made: list[SpoilRouting] = []

    def make(path: str) -> SpoilRouting:
        made.append(SpoilRouting(path))
        return made[-1]

    yield make
    for transport in made:
        await transport.aclose()


async def test_a_refused_account_validation_is_a_failed_validation_not_a_decline(
    harness_factory: HarnessFactory, processor_url: str, spoiled: Callable[[str], SpoilRouting]
) -> None:
    """Issue 20 finding 7: a 4xx from account validation is the validation failing (SPEC §9: the
    customer checks the numbers, the attempt stays AWAITING_PAYMENT), never a PAYMENT_DECLINED row
    for a payment that does not exist."""
    transport = spoiled("/v1/account-validations")
    async with harness_factory(wrap_deps=spoiling(processor_url, transport)) as h:
        inv = await new_invoice(h.pool)
        attempt = await Attempt.open(h, inv)
        await attempt.verified(Channel.EMAIL)
        with pytest.raises(AttemptRefused) as refused:
            await attempt.pay()
        state = await attempt.current()

    assert transport.answers == [("/v1/account-validations", 422)], "refused once, never retried"
    assert refused.value.type is ErrorType.ACCOUNT_VALIDATION_FAILED
    assert state.status is PaymentStatus.AWAITING_PAYMENT
    assert await h.pool.fetchval("SELECT count(*) FROM payments WHERE invoice_id = $1", inv.invoice_id) == 0
    trail = await audit_types(h.pool, inv.invoice_id)
    assert "ACCOUNT_VALIDATION_FAILED" in trail
    assert "PAYMENT_DECLINED" not in trail and "PAYMENT_SUBMITTED" not in trail


async def test_a_refused_debit_is_recorded_declined_and_never_debited(
    harness_factory: HarnessFactory, processor_url: str, spoiled: Callable[[str], SpoilRouting]
) -> None:
    transport = spoiled("/v1/debits")
    async with harness_factory(wrap_deps=spoiling(processor_url, transport)) as h:
        inv = await new_invoice(h.pool)
        attempt = await Attempt.open(h, inv)
        await attempt.verified(Channel.EMAIL)
        declined = await attempt.pay()

    assert transport.answers == [("/v1/account-validations", 201), ("/v1/debits", 422)]
    assert declined.status is PaymentStatus.DECLINED
    assert declined.payment is not None and declined.payment.decline_reason == REFUSAL
    row = await h.pool.fetchrow(
        "SELECT status, decline_reason, processor_reference, idempotency_key FROM payments"
        " WHERE invoice_id = $1",
        inv.invoice_id,
    )
    assert (row["status"], row["decline_reason"], row["processor_reference"]) == ("declined", REFUSAL, None)
    debits = await h.pool.fetchval(
        "SELECT count(*) FROM sandbox_debits WHERE idempotency_key = $1", row["idempotency_key"]
    )
    assert debits == 0
    balance = await h.pool.fetchval("SELECT balance_cents FROM invoices WHERE id = $1", inv.invoice_id)
    assert balance == 125000  # untouched
    assert (await audit_types(h.pool, inv.invoice_id))[-1] == "PAYMENT_DECLINED"
