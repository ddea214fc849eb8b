"""What people see after `PAID` (issue 11): the receipt, the pay link, and the staff invoice answer.

Real pieces only: the portal over HTTP, the sandbox processor service delivering signed webhooks,
the payment workflow on the dev server, PostgreSQL. Each test waits for the processor's event to
land in the database, never for a guessed time.
"""

from datetime import datetime
from typing import Any

import asyncpg
import httpx

from tests.conftest import HarnessFactory
from tests.console.support import make_staff, signed_in
from tests.lifecycle.services import wait_for
from tests.lifecycle.stack import Stack, lifecycle_stack, settle_now
from tests.lifecycle.test_portal_payments import customer, pay, verified_session
from tests.support import GOOD_ACCOUNT, create_invoice
from tests.workflow.steps import unique_email, unique_phone

# What the pay link may tell about a payment: amount, last 4, status, dates, the reason in words.
LINK_PAYMENT_FIELDS = {
    "status",
    "phase",
    "amount_cents",
    "currency",
    "account_last4",
    "submitted_at",
    "expected_settlement_at",
    "settled_at",
    "ended_at",
    "return_code",
    "reason",
    "next_step",
}


async def _payment_status(pool: asyncpg.Pool, invoice_id: str) -> str | None:
    status: str | None = await pool.fetchval(
        "SELECT status FROM payments WHERE invoice_id = $1 ORDER BY submitted_at DESC LIMIT 1", invoice_id
    )
    return status


async def _link_view(http: httpx.AsyncClient) -> dict[str, Any]:
    r = await http.get("/api/portal/payment")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _page_view(http: httpx.AsyncClient, token: str) -> str:
    page = await http.get(f"/pay/{token}")
    assert page.status_code == 200, page.text
    marker = 'data-initial-view="'
    start = page.text.index(marker) + len(marker)
    return page.text[start : page.text.index('"', start)]


async def _staff_invoice(s: Stack, invoice_id: str) -> dict[str, Any]:
    token = s.harness.settings.secret("staff_api_token")
    async with httpx.AsyncClient(base_url=s.portal_url, timeout=30) as http:
        r = await http.get(f"/api/staff/invoices/{invoice_id}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _token(http: httpx.AsyncClient) -> str:
    return http.headers["Authorization"].removeprefix("Bearer ")


async def test_receipt_says_submitted_and_the_link_follows_the_payment_until_settled(
    harness_factory: HarnessFactory, db_pool: asyncpg.Pool
) -> None:
    # Settlement an hour away, brought forward in the sandbox's ledger once `processing` was seen.
    async with lifecycle_stack(harness_factory, db_pool, sandbox_settlement_seconds=3600) as s:
        inv = await create_invoice(s.pool, amount_cents=125000, email=unique_email())
        async with customer(s, inv) as http:
            before = await _link_view(http)
            assert before["payment"] is None and before["can_pay"] is True
            session = await verified_session(s, http, inv)
            answer = await pay(http, session, GOOD_ACCOUNT)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            receipt = body["payment"]
            # SPEC §4's fields stay; the payment's own status says it is submitted, not final.
            assert body["status"] == "PAID"
            assert {"payment_id", "amount_cents", "account_last4"} <= set(receipt)
            assert receipt["status"] == "processing" and receipt["account_last4"] == "6789"
            stored = await s.pool.fetchval(
                "SELECT expected_settlement_at FROM payments WHERE id = $1", receipt["payment_id"]
            )
            # The processor's own date, as stored when it accepted the debit.
            assert stored is not None and _when(receipt["expected_settlement_at"]) == stored
            # The same session, asked again, tells the same.
            state = (await http.get(f"/api/portal/sessions/{session}")).json()
            assert state["payment"]["status"] == "processing"

            # The link: the payment is processing; opening an attempt is still 409 as before.
            view = await _link_view(http)
            assert view["payment"]["status"] == "processing" and view["payment"]["phase"] == "processing"
            assert view["can_pay"] is False and view["invoice"]["status"] == "pending"
            assert view["payment"]["expected_settlement_at"] == receipt["expected_settlement_at"]
            again = await http.post("/api/portal/sessions")
            assert again.status_code == 409 and again.json()["error"] == "InvoiceAlreadyPaid", again.text
            assert await _page_view(http, _token(http)) == "payment-processing"
            assert set(view["payment"]) == LINK_PAYMENT_FIELDS
            assert (
                receipt["payment_id"] not in str(view)
                and "dbt_" not in str(view)
                and "routing" not in str(view)
            )

            await settle_now(s.pool, inv.invoice_id)
            await wait_for(
                lambda: _payment_status(s.pool, inv.invoice_id), lambda v: v == "settled", what="settled"
            )
            settled = await _link_view(http)
            assert settled["payment"]["phase"] == "settled" and settled["payment"]["settled_at"]
            assert settled["invoice"]["status"] == "paid" and settled["invoice"]["balance_cents"] == 0
            assert settled["can_pay"] is False
            assert await _page_view(http, _token(http)) == "payment-settled"
            state = (await http.get(f"/api/portal/sessions/{session}")).json()
            assert state["payment"]["status"] == "settled"
        staff = await _staff_invoice(s, inv.invoice_id)
        assert staff["status"] == "paid" and staff["balance_cents"] == 0 and staff["amount_cents"] == 125000
        [payment] = staff["payments"]
        assert payment["status"] == "settled" and payment["payment_id"] == receipt["payment_id"]
        assert payment["settled_at"] and payment["submitted_at"] and payment["expected_settlement_at"]
        assert payment["return_code"] is None and payment["returned_at"] is None


async def test_r01_link_says_it_did_not_go_through_and_the_customer_pays_again(
    harness_factory: HarnessFactory, db_pool: asyncpg.Pool
) -> None:
    async with lifecycle_stack(harness_factory, db_pool) as s:
        inv = await create_invoice(s.pool, amount_cents=99900, email=unique_email(), phone=unique_phone())
        async with customer(s, inv) as http:
            session = await verified_session(s, http, inv)
            first = (await pay(http, session, "000444444440")).json()["payment"]
            await wait_for(
                lambda: _payment_status(s.pool, inv.invoice_id), lambda v: v == "failed", what="failed"
            )
            view = await _link_view(http)
            failed = view["payment"]
            assert failed["phase"] == "did_not_go_through" and failed["status"] == "failed"
            assert (
                failed["return_code"] == "R01"
                and failed["reason"] == "there were not enough funds in the account"
            )
            assert failed["next_step"] == "pay_again" and failed["ended_at"]
            assert view["can_pay"] is True and view["invoice"]["status"] == "open"
            assert view["invoice"]["balance_cents"] == 99900
            assert await _page_view(http, _token(http)) == "payment-failed"

            staff = await _staff_invoice(s, inv.invoice_id)
            [row] = staff["payments"]
            assert row["payment_id"] == first["payment_id"] and row["status"] == "failed"
            assert row["return_code"] == "R01" and row["return_meaning"] == "insufficient funds"
            assert row["unauthorized_return"] is False and row["failed_at"] and row["settled_at"] is None

            # A new attempt pays; the link then follows the new payment.
            session = await verified_session(s, http, inv)
            second = await pay(http, session, GOOD_ACCOUNT)
            assert second.status_code == 200 and second.json()["payment"]["status"] == "processing", (
                second.text
            )
            latest = (await _link_view(http))["payment"]
            assert latest["status"] in ("processing", "settled") and latest["account_last4"] == "6789"
        staff = await _staff_invoice(s, inv.invoice_id)
        assert [p["status"] for p in staff["payments"]][:1] == ["failed"] and len(staff["payments"]) == 2


async def test_unauthorized_return_tells_the_customer_to_contact_the_company(
    harness_factory: HarnessFactory, db_pool: asyncpg.Pool
) -> None:
    async with lifecycle_stack(harness_factory, db_pool) as s:
        inv = await create_invoice(s.pool, amount_cents=48000, email=unique_email())
        async with customer(s, inv) as http:
            session = await verified_session(s, http, inv)
            assert (await pay(http, session, "000555555553")).status_code == 200
            await wait_for(
                lambda: _payment_status(s.pool, inv.invoice_id), lambda v: v == "returned", what="returned"
            )
            returned = (await _link_view(http))["payment"]
            assert returned["phase"] == "did_not_go_through" and returned["return_code"] == "R10"
            assert returned["next_step"] == "contact_company" and "not authorized" in returned["reason"]
            assert returned["settled_at"] and returned["ended_at"]
            assert await _page_view(http, _token(http)) == "payment-failed"
        [row] = (await _staff_invoice(s, inv.invoice_id))["payments"]
        assert row["status"] == "returned" and row["return_code"] == "R10"
        assert (
            row["return_meaning"] == "customer advises not authorized" and row["unauthorized_return"] is True
        )
        assert row["settled_at"] and row["returned_at"] and row["returned_at"] >= row["settled_at"]
        # The console's invoice page reads the same: status, the code with its meaning, when.
        creds = await make_staff(s.pool, "Returns Staff")
        async with httpx.AsyncClient(base_url=s.portal_url, timeout=30) as console:
            await signed_in(console, creds)
            page = await console.get(f"/staff/invoices/{inv.invoice_id}")
        assert page.status_code == 200, page.text
        assert "R10 customer advises not authorized (unauthorized: no new pay link sent)" in page.text
        assert "<td>returned</td>" in page.text and "returned 20" in page.text
