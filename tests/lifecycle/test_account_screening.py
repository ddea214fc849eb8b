"""SPEC §9 screening inside the debit activity (issue 13's fold): when the processor cannot be
reached to validate an unseen account, nothing is written and the customer is asked to try again;
the attempt stays open for the retry."""

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from domain.audit import AuditEventType
from domain.errors import ErrorType
from domain.status import PaymentStatus
from starters.workflow_client import AttemptRefused
from tests.conftest import HarnessFactory
from tests.lifecycle.services import serve
from tests.support import create_invoice
from tests.workflow.steps import Attempt, audit_rows, bank_details

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: connection refused at once


async def test_an_unreachable_processor_while_screening_asks_to_try_again_and_writes_nothing(
    harness_factory: HarnessFactory,
) -> None:
    async with harness_factory(processor_sandbox_url=UNREACHABLE) as h:
        inv = await create_invoice(h.pool, kind="deposit", amount_cents=20000)  # no code needed
        attempt = await Attempt.open(h, inv)
        assert attempt.state.status is PaymentStatus.AWAITING_PAYMENT

        with pytest.raises(AttemptRefused) as refused:
            await attempt.pay(bank_details())
        assert refused.value.type is ErrorType.ATTEMPT_BUSY
        assert refused.value.retry_after == 30

        assert (await attempt.current()).status is PaymentStatus.AWAITING_PAYMENT
        payments = await h.pool.fetchval(
            "SELECT count(*) FROM payments WHERE invoice_id = $1", inv.invoice_id
        )
        assert payments == 0
        written = {r["event_type"] for r in await audit_rows(h.pool, inv.invoice_id)}
        assert not written & {
            AuditEventType.ACCOUNT_VALIDATED.value,
            AuditEventType.ACCOUNT_VALIDATION_FAILED.value,
            AuditEventType.PAYMENT_SUBMITTED.value,
        }

        # The same attempt takes the customer's next press: refused the same way, not stuck.
        with pytest.raises(AttemptRefused) as again:
            await attempt.pay(bank_details())
        assert again.value.type is ErrorType.ATTEMPT_BUSY


def _processor_refusing_validations() -> FastAPI:
    """A processor that refuses to check the numbers (a 4xx) and must never be asked to debit."""
    app = FastAPI()

    @app.post("/v1/account-validations")
    async def refuse() -> JSONResponse:
        return JSONResponse(
            {"error": {"code": "invalid_request", "message": "cannot check"}}, status_code=422
        )

    @app.post("/v1/debits")
    async def debit() -> JSONResponse:
        raise AssertionError("nothing may be debited after a refused validation")

    return app


async def test_a_4xx_from_account_validation_asks_to_check_the_numbers_and_declines_nothing(
    harness_factory: HarnessFactory,
) -> None:
    """Issue 20 finding 7: the old code recorded PAYMENT_DECLINED and ended the attempt DECLINED
    for a payment that never existed."""
    async with (
        serve(_processor_refusing_validations()) as url,
        harness_factory(processor_sandbox_url=url) as h,
    ):
        inv = await create_invoice(h.pool, kind="deposit", amount_cents=20000)
        attempt = await Attempt.open(h, inv)
        with pytest.raises(AttemptRefused) as refused:
            await attempt.pay(bank_details())
        assert refused.value.type is ErrorType.ACCOUNT_VALIDATION_FAILED
        assert (await attempt.current()).status is PaymentStatus.AWAITING_PAYMENT
        written = [r["event_type"] for r in await audit_rows(h.pool, inv.invoice_id)]
        assert AuditEventType.PAYMENT_DECLINED.value not in written
        assert AuditEventType.ACCOUNT_VALIDATION_FAILED.value in written
        assert (
            await h.pool.fetchval("SELECT count(*) FROM payments WHERE invoice_id = $1", inv.invoice_id) == 0
        )
