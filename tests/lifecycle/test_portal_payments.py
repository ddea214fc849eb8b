"""Paying through the portal with the SPEC §9 test accounts: the processor service over HTTP, its
webhooks to the portal, the payment workflow, and what the customer can do next."""

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx

from infra.pay_links import signer_from_settings
from tests.conftest import HarnessFactory
from tests.lifecycle.services import wait_for
from tests.lifecycle.stack import Stack, lifecycle_stack, settle_now
from tests.support import GOOD_ACCOUNT, GOOD_ROUTING, create_invoice, latest_code, outbox_messages
from tests.support import TestInvoice as Invoice
from tests.workflow.steps import audit_rows, unique_email, unique_phone


@contextlib.asynccontextmanager
async def customer(s: Stack, inv: Invoice) -> AsyncIterator[httpx.AsyncClient]:
    token = signer_from_settings(s.harness.settings).issue(inv.invoice_id)
    async with httpx.AsyncClient(
        base_url=s.portal_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        yield http


async def verified_session(s: Stack, http: httpx.AsyncClient, inv: Invoice) -> str:
    opened = await http.post("/api/portal/sessions")
    assert opened.status_code == 200, opened.text
    session = opened.json()["session_id"]
    channel, to = ("email", inv.email) if inv.email else ("sms", inv.phone)
    sent = await http.post(f"/api/portal/sessions/{session}/code", json={"channel": channel})
    assert sent.status_code == 200, sent.text
    code = await latest_code(s.pool, to or "")
    checked = await http.post(f"/api/portal/sessions/{session}/verify", json={"code": code})
    assert checked.status_code == 200 and checked.json()["verified"], checked.text
    return str(session)


async def pay(http: httpx.AsyncClient, session: str, account: str) -> httpx.Response:
    return await http.post(
        f"/api/portal/sessions/{session}/payment",
        json={
            "method": "echeck",
            "account_holder": "Alan Turing",
            "routing_number": GOOD_ROUTING,
            "account_number": account,
            "account_type": "checking",
        },
    )


async def _invoice(pool: asyncpg.Pool, invoice_id: str) -> tuple[str, int]:
    row = await pool.fetchrow("SELECT status, balance_cents FROM invoices WHERE id = $1", invoice_id)
    return (row["status"], row["balance_cents"])


async def _payment(pool: asyncpg.Pool, invoice_id: str) -> dict[str, Any]:
    row = await pool.fetchrow(
        "SELECT id, status, return_code FROM payments WHERE invoice_id = $1 ORDER BY created_at DESC LIMIT 1",
        invoice_id,
    )
    return dict(row) if row else {}


async def test_settles_pending_then_paid_and_no_new_attempt_meanwhile(
    harness_factory: HarnessFactory, db_pool: asyncpg.Pool
) -> None:
    # Settlement an hour away: the checks in between see `processing` however slow the machine;
    # then the date is moved to now in the sandbox's ledger (settle_now).
    async with lifecycle_stack(harness_factory, db_pool, sandbox_settlement_seconds=3600) as s:
        inv = await create_invoice(s.pool, amount_cents=125000, email=unique_email())
        async with customer(s, inv) as http:
            session = await verified_session(s, http, inv)
            answer = await pay(http, session, GOOD_ACCOUNT)
            assert answer.status_code == 200 and answer.json()["status"] == "PAID", answer.text
            assert await _invoice(s.pool, inv.invoice_id) == ("pending", 0)
            assert (await _payment(s.pool, inv.invoice_id))["status"] == "processing"
            again = await http.post("/api/portal/sessions")
            assert again.status_code == 409, again.text
            await settle_now(s.pool, inv.invoice_id)
            await wait_for(lambda: _invoice(s.pool, inv.invoice_id), lambda i: i[0] == "paid", what="paid")
        types = [r["event_type"] for r in await audit_rows(s.pool, inv.invoice_id)]
        assert types[-4:] == ["ACCOUNT_VALIDATED", "PAYMENT_SUBMITTED", "PAYMENT_ACCEPTED", "PAYMENT_SETTLED"]


async def test_r01_reopens_the_invoice_tells_the_payer_by_sms_and_a_new_attempt_can_pay(
    harness_factory: HarnessFactory, db_pool: asyncpg.Pool
) -> None:
    async with lifecycle_stack(harness_factory, db_pool) as s:
        inv = await create_invoice(s.pool, amount_cents=99900, email=None, phone=unique_phone())
        async with customer(s, inv) as http:
            session = await verified_session(s, http, inv)
            assert (await pay(http, session, "000444444440")).json()["status"] == "PAID"
            failed = await wait_for(
                lambda: _payment(s.pool, inv.invoice_id), lambda p: p.get("status") == "failed", what="failed"
            )
            assert failed["return_code"] == "R01"
            assert await _invoice(s.pool, inv.invoice_id) == ("open", 99900)
            sms = await wait_for(
                lambda: outbox_messages(s.pool, inv.phone or ""),
                lambda m: any("did not go through" in r["body"] for r in m),
                what="payer told",
            )
            assert any("/pay/" in r["body"] for r in sms if "did not go through" in r["body"])
            # R01 does not block the account: a new attempt pays from it again.
            session = await verified_session(s, http, inv)
            second = await pay(http, session, "000444444440")
            assert second.status_code == 200 and second.json()["status"] == "PAID", second.text


async def test_validation_failure_keeps_the_attempt_awaiting_payment_and_debits_nothing(
    harness_factory: HarnessFactory, db_pool: asyncpg.Pool
) -> None:
    async with lifecycle_stack(harness_factory, db_pool) as s:
        inv = await create_invoice(s.pool, email=unique_email())
        async with customer(s, inv) as http:
            session = await verified_session(s, http, inv)
            refused = await pay(http, session, "000666666666")
            assert refused.status_code == 422, refused.text
            assert "check the routing and account numbers" in refused.text
            state = await http.get(f"/api/portal/sessions/{session}")
            assert state.json()["status"] == "AWAITING_PAYMENT"
            assert (
                await s.pool.fetchval("SELECT count(*) FROM payments WHERE invoice_id = $1", inv.invoice_id)
                == 0
            )
            types = [r["event_type"] for r in await audit_rows(s.pool, inv.invoice_id)]
            assert types[-1] == "ACCOUNT_VALIDATION_FAILED"
            # The customer fixes the number and pays within the same attempt.
            fixed = await pay(http, session, GOOD_ACCOUNT)
            assert fixed.status_code == 200 and fixed.json()["status"] == "PAID", fixed.text


async def test_returned_r10_blocks_the_account_for_the_next_attempt(
    harness_factory: HarnessFactory, db_pool: asyncpg.Pool
) -> None:
    async with lifecycle_stack(harness_factory, db_pool) as s:
        inv = await create_invoice(s.pool, amount_cents=48000, email=unique_email())
        async with customer(s, inv) as http:
            session = await verified_session(s, http, inv)
            assert (await pay(http, session, "000555555553")).json()["status"] == "PAID"
            await wait_for(
                lambda: _payment(s.pool, inv.invoice_id),
                lambda p: p.get("status") == "returned",
                what="returned",
            )
            assert await _invoice(s.pool, inv.invoice_id) == ("open", 48000)
            session = await verified_session(s, http, inv)
            refused = await pay(http, session, "000555555553")
            assert refused.status_code == 422 and "cannot be used" in refused.text, refused.text
            assert (
                await s.pool.fetchval("SELECT count(*) FROM payments WHERE invoice_id = $1", inv.invoice_id)
                == 1
            )
            other = await pay(http, session, GOOD_ACCOUNT)
            assert other.status_code == 200 and other.json()["status"] == "PAID", other.text
        types = [r["event_type"] for r in await audit_rows(s.pool, inv.invoice_id)]
        assert "BANK_ACCOUNT_BLOCKED" in types and types.count("PAYMENT_RETURNED") == 1
