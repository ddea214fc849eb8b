"""No full bank account number and no code in the database (SPEC §3, §9, §11): every column looked at.

One run through the real worker, processor service and database — a code sent by SMS and one by
email, a wrong code typed, an account that fails validation, one the processor declines, two
accepted debits — then every text, json and bytea column of every table (tests/db_scan.py) is
searched for the run's full account numbers and for its codes (as a standalone number, so a hash or
a timestamp's digits are not taken for one). Not searched: the sandbox processor service's own
tables (the processor's side) and, for codes, the dev outbox (the console provider's messages).

The scanner is shown to find what it looks for: planted in a text and a bytea column, it finds both.
Every account number the whole session sent to the processor is checked the same way at the end of
the session (tests/conftest.py `_no_full_account_number_stored`).
"""

import hashlib
import secrets
import uuid

import asyncpg
import pytest

from domain.channels import Channel
from domain.status import PaymentStatus
from starters.workflow_client import AttemptRefused
from tests.db_scan import Hit, find_in_database
from tests.support import Harness, create_invoice
from tests.workflow.steps import Attempt, bank_details, new_invoice, wrong_code_for

VALIDATION_FAILS = "000666666666"
DECLINES = "000111111113"


def fresh_account() -> str:
    return f"0009{secrets.randbelow(10**8):08d}"


async def test_a_run_leaves_no_full_account_number_and_no_code_in_any_column(harness: Harness) -> None:
    accounts = {VALIDATION_FAILS, DECLINES}
    codes: set[str] = set()

    by_sms = await new_invoice(harness.pool)
    attempt = await Attempt.open(harness, by_sms)
    _, code = await attempt.send_and_read(Channel.SMS)
    wrong = wrong_code_for(code)
    assert not (await attempt.verify(wrong)).verified
    assert (await attempt.verify(code)).verified
    codes |= {code, wrong}
    with pytest.raises(AttemptRefused):  # validation failed: nothing debited, the attempt waits
        await attempt.pay(bank_details(VALIDATION_FAILS))
    account = fresh_account()
    accounts.add(account)
    assert (await attempt.pay(bank_details(account))).status is PaymentStatus.PAID

    by_email = await new_invoice(harness.pool)
    attempt = await Attempt.open(harness, by_email)
    _, code = await attempt.send_and_read(Channel.EMAIL)
    codes.add(code)
    assert (await attempt.verify(code)).verified
    assert (await attempt.pay(bank_details(DECLINES))).status is PaymentStatus.DECLINED

    deposit = await new_invoice(harness.pool, kind="deposit", amount_cents=20000)
    attempt = await Attempt.open(harness, deposit)  # no code for a deposit (SPEC §1)
    account = fresh_account()
    accounts.add(account)
    assert (await attempt.pay(bank_details(account))).status is PaymentStatus.PAID

    assert await find_in_database(harness.pool, accounts) == []
    assert await find_in_database(harness.pool, codes, skip=("sandbox_", "dev_outbox"), standalone=True) == []


async def test_the_scanner_finds_a_planted_account_number_in_text_and_bytea(db_pool: asyncpg.Pool) -> None:
    planted = fresh_account()
    inv = await create_invoice(db_pool)
    await db_pool.execute("UPDATE customers SET name = $2 WHERE id = $1", inv.customer_id, f"Leak {planted}")
    staff_id = await db_pool.fetchval(
        "INSERT INTO staff_users (email, name, password_hash) VALUES ($1, 'Scanner', 'x') RETURNING id",
        f"scan-{uuid.uuid4().hex[:10]}@example.com",
    )
    await db_pool.execute(
        "INSERT INTO staff_sessions (token_hash, staff_user_id, csrf_token, ended_at) VALUES ($1, $2, 'c', now())",
        hashlib.sha256(planted.encode()).digest()[:4] + planted.encode() + b"\x00\xff",
        staff_id,
    )
    assert set(await find_in_database(db_pool, {planted})) == {
        Hit("customers", "name", planted),
        Hit("staff_sessions", "token_hash", planted),
    }
    # A six-digit run inside a longer number, a hash or a timestamp's fraction is not a code.
    code = planted[-6:]
    assert Hit("customers", "name", code) in await find_in_database(db_pool, {code})
    standalone = await find_in_database(db_pool, {code}, standalone=True)
    assert Hit("customers", "name", code) not in standalone
