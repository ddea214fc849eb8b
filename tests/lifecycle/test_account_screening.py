"""SPEC §9 screening inside the debit activity (issue 13's fold): when the processor cannot be
reached to validate an unseen account, nothing is written and the customer is asked to try again;
the attempt stays open for the retry."""

import pytest

from domain.audit import AuditEventType
from domain.errors import ErrorType
from domain.status import PaymentStatus
from starters.workflow_client import AttemptRefused
from tests.conftest import HarnessFactory
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
