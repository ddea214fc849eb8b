"""Issue 21, finding 3, tried again as described: one pay-link holder wrote without limit (50 refused
code requests on one link added 51 audit rows and about 17 history events each), burned the
invoice's send caps and locked the invoice so the real payer could not pay."""

import json
from typing import Any

from temporalio.api.enums.v1 import EventType

from domain.attempt import workflow_id_for
from sandbox_processor.ledger import VALIDATION_FAILS
from tests.console.support import console_client, make_staff, signed_in
from tests.hostile.helpers import bank, history_event_types, session_path
from tests.portal.conftest import Portal, PortalFactory
from tests.support import create_invoice, latest_code, wrong_code


async def _open(portal: Portal, token: str) -> dict[str, Any]:
    r = await portal.http.post("/api/portal/sessions", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _post(portal: Portal, token: str, session_id: str, suffix: str, body: Any = None) -> Any:
    return await portal.http.post(
        session_path(session_id, suffix), json=body, headers={"Authorization": f"Bearer {token}"}
    )


async def _audit(portal: Portal, invoice_id: str, event_type: str) -> int:
    return int(
        await portal.pool.fetchval(
            "SELECT count(*) FROM audit_events WHERE invoice_id = $1 AND event_type = $2",
            invoice_id,
            event_type,
        )
    )


async def test_fifty_refused_code_requests_write_one_audit_row_and_no_history(
    portal_factory: PortalFactory,
) -> None:
    async with portal_factory(otp_max_sends=2) as portal:
        invoice = await create_invoice(portal.pool)
        link = portal.token(invoice.invoice_id)
        first = await _open(portal, link)
        for _ in range(2):
            assert (
                await _post(portal, link, first["session_id"], "/code", {"channel": "email"})
            ).status_code == 200
        # Cancel and reopen: a new attempt whose own counter is fresh, the invoice's cap is not.
        assert (await _post(portal, link, first["session_id"], "/cancel")).status_code == 200
        session = (await _open(portal, link))["session_id"]
        answers = [await _post(portal, link, session, "/code", {"channel": "email"}) for _ in range(50)]
        assert all(a.status_code == 429 and a.json()["retry_after"] > 0 for a in answers)
        assert "5" not in {str(a.status_code)[0] for a in answers}
        assert await _audit(portal, invoice.invoice_id, "OTP_SEND_REFUSED") == 1
        # Over budget, nothing reaches the workflow: one refused send's worth of events in total.
        history = await history_event_types(portal.harness.client, invoice.invoice_id)
        assert (
            history.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) <= 4
        )  # resolve, the refused send, its audit row, at most one more
        updates = history.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)
        assert updates <= 2  # the open and the one refused send


async def test_a_link_holder_locks_the_payer_out_for_one_window_at_most(
    portal_factory: PortalFactory,
) -> None:
    async with portal_factory(otp_max_failed=2) as portal:
        invoice = await create_invoice(portal.pool)
        holder = portal.token(invoice.invoice_id)  # forwarded to someone who is not the payer

        async def guess_wrong_until_locked() -> None:
            session = (await _open(portal, holder))["session_id"]
            assert (await _post(portal, holder, session, "/code", {"channel": "email"})).status_code == 200
            code = await latest_code(portal.pool, invoice.email or "")
            answer: dict[str, Any] = {}
            while answer.get("status") != "LOCKED":
                r = await _post(portal, holder, session, "/verify", {"code": wrong_code(code)})
                assert r.status_code == 200, r.text
                answer = r.json()

        await guess_wrong_until_locked()
        assert await _audit(portal, invoice.invoice_id, "OTP_LOCKED") == 1
        # attempt.locked is noted for staff (SPEC §12 events), where the lock was recorded.
        events = await portal.pool.fetch(
            "SELECT data FROM events WHERE type = 'attempt.locked' AND data->'object'->>'invoice_id' = $1",
            invoice.invoice_id,
        )
        assert len(events) == 1
        data = events[0]["data"]
        obj = (json.loads(data) if isinstance(data, str) else data)["object"]
        assert obj["locked_until"] and obj["workflow_id"] == workflow_id_for(invoice.invoice_id)
        async with console_client(portal.app) as staff_browser:
            await signed_in(staff_browser, await make_staff(portal.pool))
            page = (await staff_browser.get("/staff/attention")).text
        locks = page[page.index('id="locks-heading"') :]
        assert invoice.invoice_id in locks
        # The lockout window passes (moved, not waited for).
        await portal.pool.execute(
            "UPDATE invoices SET locked_until = now() WHERE id = $1", invoice.invoice_id
        )
        await portal.pool.execute(
            "UPDATE otp_checks SET checked_at = checked_at - interval '1 day' WHERE invoice_id = $1",
            invoice.invoice_id,
        )

        # The holder comes back: one more wrong code is allowed, a second lock is not.
        session = (await _open(portal, holder))["session_id"]
        assert (await _post(portal, holder, session, "/code", {"channel": "email"})).status_code == 200
        code = await latest_code(portal.pool, invoice.email or "")
        first = await _post(portal, holder, session, "/verify", {"code": wrong_code(code)})
        assert first.status_code == 200 and first.json()["status"] == "AWAITING_CODE"
        refused = await _post(portal, holder, session, "/verify", {"code": wrong_code(code)})
        assert refused.status_code == 429 and refused.json()["reason"] == "link_spent"
        assert await _audit(portal, invoice.invoice_id, "OTP_LOCKED") == 1

        # The payer, with the link staff sent them, is not locked out and pays.
        payer = portal.token(invoice.invoice_id)
        session = (await _open(portal, payer))["session_id"]
        assert (await _post(portal, payer, session, "/code", {"channel": "email"})).status_code == 200
        code = await latest_code(portal.pool, invoice.email or "")
        verified = await _post(portal, payer, session, "/verify", {"code": code})
        assert verified.status_code == 200 and verified.json()["verified"], verified.text
        paid = await _post(portal, payer, session, "/payment", bank())
        assert paid.status_code == 200 and paid.json()["status"] == "PAID", paid.text


async def test_a_link_cannot_burn_the_send_caps_window_after_window(portal_factory: PortalFactory) -> None:
    async with portal_factory(otp_max_sends=2) as portal:
        invoice = await create_invoice(portal.pool)
        holder = portal.token(invoice.invoice_id)
        session = (await _open(portal, holder))["session_id"]
        sent = [await _post(portal, holder, session, "/code", {"channel": "sms"}) for _ in range(2)]
        assert [s.status_code for s in sent] == [200, 200]
        # The invoice's window passes (moved back, not waited for): the holder may send once more
        # (2 * OTP_MAX_SENDS - 1 per link in its life), never a whole second window.
        await portal.pool.execute(
            "UPDATE otp_challenges SET created_at = created_at - interval '1 day' WHERE invoice_id = $1",
            invoice.invoice_id,
        )
        await _post(portal, holder, session, "/cancel")
        session = (await _open(portal, holder))["session_id"]
        assert (await _post(portal, holder, session, "/code", {"channel": "sms"})).status_code == 200
        spent = await _post(portal, holder, session, "/code", {"channel": "sms"})
        assert spent.status_code == 429 and spent.json()["reason"] == "link_spent"
        # The payer's own link still gets a code in this window.
        payer = portal.token(invoice.invoice_id)
        assert (await _post(portal, payer, session, "/code", {"channel": "email"})).status_code == 200


async def test_account_validations_per_link_are_limited(portal_factory: PortalFactory) -> None:
    async with portal_factory(pay_link_payment_tries_per_window=2) as portal:
        invoice = await create_invoice(portal.pool)
        link = portal.token(invoice.invoice_id)
        session = (await _open(portal, link))["session_id"]
        assert (await _post(portal, link, session, "/code", {"channel": "email"})).status_code == 200
        code = await latest_code(portal.pool, invoice.email or "")
        assert (await _post(portal, link, session, "/verify", {"code": code})).json()["verified"]
        # The sandbox's account that fails validation: refused, and the attempt waits for another.
        unknown = bank(account_number=VALIDATION_FAILS)
        statuses = [(await _post(portal, link, session, "/payment", unknown)).status_code for _ in range(4)]
        assert statuses == [422, 422, 429, 429], statuses
        validations = await portal.pool.fetchval(
            "SELECT count(*) FROM audit_events WHERE invoice_id = $1 AND event_type LIKE 'ACCOUNT_VALIDAT%'",
            invoice.invoice_id,
        )
        assert validations <= 2


async def test_a_link_past_its_refusal_budget_is_answered_without_temporal(
    portal_factory: PortalFactory,
) -> None:
    async with portal_factory(pay_link_refusals_per_window=3) as portal:
        invoice = await create_invoice(portal.pool)
        link = portal.token(invoice.invoice_id)
        session = (await _open(portal, link))["session_id"]
        # Verifying with no code outstanding is refused (409) by the validator, three times …
        for _ in range(3):
            assert (await _post(portal, link, session, "/verify", {"code": "123456"})).status_code == 409
        before = await history_event_types(portal.harness.client, invoice.invoice_id)
        # … and then every request of that link is 429 until the window ends, even a good one.
        over = await _post(portal, link, session, "/code", {"channel": "email"})
        assert over.status_code == 429 and over.json()["reason"] == "link_refusals"
        assert await history_event_types(portal.harness.client, invoice.invoice_id) == before
