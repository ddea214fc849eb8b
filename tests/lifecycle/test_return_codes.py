"""Every return code of SPEC §9 and its effects, table-driven, through the real follower.

Each payment is made by a real attempt (the debit activity, the sandbox processor); then the
processor's own ledger says the debit failed (before settlement) or was returned (after it) with the
code, and publishes the event as it does for its own test accounts. The signed webhook reaches the
portal and the payment's `AchPaymentWorkflow` applies it. Only observable outcomes are asserted: the
payment and invoice rows, the blocklist, the audit trail, the messages in the outbox.
"""

import asyncio
from dataclasses import dataclass
from typing import Any

import asyncpg

from domain.status import PaymentStatus
from sandbox_processor import ledger
from tests.conftest import HarnessFactory
from tests.lifecycle.conftest import STAFF_EMAIL
from tests.lifecycle.services import wait_for
from tests.lifecycle.stack import Stack, lifecycle_stack
from tests.support import TestInvoice, create_invoice, outbox_messages
from tests.workflow.steps import Attempt, audit_rows, bank_details, unique_email

AMOUNT = 31000


@dataclass(frozen=True)
class Expected:
    code: str
    status: str  # failed (before settlement) | returned (after it)
    blocks_account: bool
    fresh_pay_link: bool  # False: unauthorized, flagged for staff instead


# SPEC §9: all but R01 and R09 block the account; R05, R07, R10 and R29 get no fresh pay link and
# are flagged for staff.
TABLE = (
    Expected("R01", "failed", False, True),
    Expected("R02", "failed", True, True),
    Expected("R03", "failed", True, True),
    Expected("R04", "failed", True, True),
    Expected("R05", "returned", True, False),
    Expected("R07", "returned", True, False),
    Expected("R08", "returned", True, True),
    Expected("R09", "failed", False, True),
    Expected("R10", "returned", True, False),
    Expected("R16", "failed", True, True),
    Expected("R20", "returned", True, True),
    Expected("R29", "returned", True, False),
)


async def processor_reports(pool: asyncpg.Pool, debit_id: str, status: str, code: str) -> None:
    """The processor's ledger moves the debit and publishes the event(s), as its clock does."""
    faults = ledger.FaultPlan()
    async with pool.acquire() as conn, conn.transaction():
        if status == "returned":
            settled = await conn.fetchrow(
                "UPDATE sandbox_debits SET status = 'settled', settled_at = now() WHERE id = $1 RETURNING *",
                debit_id,
            )
            await ledger.publish(conn, settled, "debit.settled", faults)
        row = await conn.fetchrow(
            "UPDATE sandbox_debits SET status = $2, return_code = $3, closed_at = now() WHERE id = $1 RETURNING *",
            debit_id,
            status,
            code,
        )
        await ledger.publish(conn, row, f"debit.{status}", faults)


async def pay(s: Stack, inv: TestInvoice, account: str) -> str:
    attempt = await Attempt.open(s.harness, inv)
    paid = await attempt.pay(bank_details(account))
    assert paid.status is PaymentStatus.PAID and paid.payment is not None
    return paid.payment.payment_id


async def outcome(pool: asyncpg.Pool, payment_id: str) -> dict[str, Any]:
    row = await pool.fetchrow(
        "SELECT p.status, p.return_code, i.status AS invoice, i.balance_cents, i.amount_cents, i.number"
        " FROM payments p JOIN invoices i ON i.id = p.invoice_id WHERE p.id = $1",
        payment_id,
    )
    return dict(row)


async def check(s: Stack, case: Expected, index: int) -> None:
    inv = await create_invoice(s.pool, kind="deposit", amount_cents=AMOUNT, email=unique_email())
    account = f"0071{index:04d}{AMOUNT:05d}"  # a distinct unseen account per code
    payment_id = await pay(s, inv, account)
    debit_id = await s.pool.fetchval("SELECT processor_reference FROM payments WHERE id = $1", payment_id)
    await processor_reports(s.pool, debit_id, case.status, case.code)

    state = await wait_for(
        lambda: outcome(s.pool, payment_id),
        lambda r: r["status"] == case.status and r["invoice"] == "open",
        timeout=90,
        what=f"{case.code} applied",
    )
    assert state["return_code"] == case.code, case
    assert state["balance_cents"] == state["amount_cents"] == AMOUNT, case  # balance restored

    blocked = await s.pool.fetchval(
        "SELECT return_code FROM blocked_bank_accounts WHERE payment_id = $1", payment_id
    )
    assert (blocked == case.code) is case.blocks_account, (case, blocked)

    payer = await wait_for(
        lambda: outbox_messages(s.pool, inv.email or ""),
        lambda m: len(m) >= 1,
        what=f"payer told of {case.code}",
    )
    assert len(payer) == 1, case
    assert ("/pay/" in payer[0]["body"]) is case.fresh_pay_link, (case, payer[0]["body"])

    staff = await wait_for(
        lambda: outbox_messages(s.pool, STAFF_EMAIL),
        lambda m: any(
            inv.invoice_id in (r["body"] or "") or state["number"] in (r["subject"] or "") for r in m
        ),
        what=f"staff told of {case.code}",
    )
    mine = [r for r in staff if state["number"] in (r["subject"] or "") + (r["body"] or "")]
    assert mine and case.code in (mine[0]["subject"] or "") + (mine[0]["body"] or ""), case

    rows = await audit_rows(s.pool, inv.invoice_id)
    types = [r["event_type"] for r in rows]
    assert ("PAYMENT_FAILED" if case.status == "failed" else "PAYMENT_RETURNED") in types, (case, types)
    assert ("BANK_ACCOUNT_BLOCKED" in types) is case.blocks_account, (case, types)
    outcome_row = next(r for r in rows if r["event_type"] in ("PAYMENT_FAILED", "PAYMENT_RETURNED"))
    assert outcome_row["details"].get("return_code") == case.code, case
    assert outcome_row["details"].get("flagged_for_staff") is (not case.fresh_pay_link), case
    assert outcome_row["payer_contact_id"] == inv.payer_contact_id, case


async def test_every_return_code_has_its_effects(
    harness_factory: HarnessFactory, db_pool: asyncpg.Pool
) -> None:
    # The sandbox's own clock leaves these debits alone: only the table's events move them.
    async with lifecycle_stack(harness_factory, db_pool, sandbox_settlement_seconds=3600.0) as s:
        results = await asyncio.gather(
            *(check(s, case, i) for i, case in enumerate(TABLE)), return_exceptions=True
        )
    failures = [
        (case.code, r) for case, r in zip(TABLE, results, strict=True) if isinstance(r, BaseException)
    ]
    assert not failures, failures
    assert {case.code for case in TABLE} == {
        "R01",
        "R02",
        "R03",
        "R04",
        "R05",
        "R07",
        "R08",
        "R09",
        "R10",
        "R16",
        "R20",
        "R29",
    }
