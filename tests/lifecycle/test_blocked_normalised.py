"""Issue 20 finding 5 / SPEC §9: a blocked bank account is known by its normalised numbers, so a
leading zero (or a separator) does not make it a new account. Rows stored before normalisation
(the fingerprint of the number as typed) keep blocking every spelling of the same account."""

import hashlib
import hmac
from typing import Any

import asyncpg
import pytest

from domain.bank_account import normalised_account_number, zero_padded_spellings
from domain.errors import ErrorType
from domain.status import PaymentStatus
from infra.bank_accounts import bank_fingerprint
from starters.workflow_client import AttemptRefused
from tests.conftest import HarnessFactory
from tests.lifecycle.services import wait_for
from tests.lifecycle.stack import lifecycle_stack
from tests.support import GOOD_ROUTING, create_invoice
from tests.workflow.steps import Attempt, bank_details, unique_email

RETURNS_R10 = "000555555553"


def test_normalised_numbers_ignore_leading_zeros_and_separators() -> None:
    assert normalised_account_number("000555555553") == "555555553"
    assert normalised_account_number("0000555555553") == "555555553"
    assert normalised_account_number("5555-5555 3") == "555555553"
    assert normalised_account_number("0000") == "0"
    key = b"k" * 32
    assert bank_fingerprint(key, GOOD_ROUTING, "000555555553") == bank_fingerprint(
        key, GOOD_ROUTING, "0000555555553"
    )
    assert bank_fingerprint(key, GOOD_ROUTING, "000555555553") != bank_fingerprint(
        key, GOOD_ROUTING, "000555555554"
    )
    spellings = zero_padded_spellings("0555555553")
    assert (
        spellings[0] == "555555553" and spellings[-1] == "00000000555555553" and "000555555553" in spellings
    )


async def _payment(pool: asyncpg.Pool, invoice_id: str) -> dict[str, Any]:
    row = await pool.fetchrow(
        "SELECT p.status, i.status AS invoice FROM payments p JOIN invoices i ON i.id = p.invoice_id"
        " WHERE p.invoice_id = $1 ORDER BY p.submitted_at DESC LIMIT 1",
        invoice_id,
    )
    return dict(row) if row else {}


async def test_after_an_r10_return_the_same_account_with_another_leading_zero_is_refused(
    harness_factory: HarnessFactory, db_pool: asyncpg.Pool
) -> None:
    async with lifecycle_stack(harness_factory, db_pool) as s:
        inv = await create_invoice(s.pool, kind="deposit", amount_cents=20000, email=unique_email())
        first = await Attempt.open(s.harness, inv)
        paid = await first.pay(bank_details(RETURNS_R10))
        assert paid.status is PaymentStatus.PAID
        await wait_for(
            lambda: _payment(s.pool, inv.invoice_id),
            lambda p: p.get("status") == "returned" and p.get("invoice") == "open",
            timeout=60,
            what="the R10 return applied",
        )

        again = await Attempt.open(s.harness, inv)
        with pytest.raises(AttemptRefused) as refused:
            await again.pay(bank_details("0" + RETURNS_R10))
        assert refused.value.type is ErrorType.BANK_ACCOUNT_BLOCKED
        assert (await again.current()).status is PaymentStatus.AWAITING_PAYMENT
        assert (
            await s.pool.fetchval("SELECT count(*) FROM payments WHERE invoice_id = $1", inv.invoice_id) == 1
        )


async def test_a_blocklist_row_stored_before_normalisation_still_blocks_every_spelling(
    harness_factory: HarnessFactory,
) -> None:
    keys: list[bytes] = []

    def capture(deps: Any) -> Any:
        keys.append(deps.bank_fingerprint_key)
        return deps

    async with harness_factory(wrap_deps=capture) as h:
        # The fingerprint as the code before normalisation took it: of the number exactly as typed.
        legacy = hmac.new(keys[0], f"{GOOD_ROUTING}:000123450006".encode(), hashlib.sha256).hexdigest()
        await h.pool.execute(
            "INSERT INTO blocked_bank_accounts (fingerprint, account_last4, return_code, payment_id)"
            " VALUES ($1, '0006', 'R02', 'PAY-BEFORE-NORMALISATION')",
            legacy,
        )
        for spelling in ("000123450006", "123450006", "0000000123450006"):
            inv = await create_invoice(h.pool, kind="deposit", amount_cents=20000)
            attempt = await Attempt.open(h, inv)
            with pytest.raises(AttemptRefused) as refused:
                await attempt.pay(bank_details(spelling))
            assert refused.value.type is ErrorType.BANK_ACCOUNT_BLOCKED, spelling
