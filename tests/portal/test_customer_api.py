"""SPEC §4 customer API, every row and every error code, against the real workflow and PostgreSQL."""

import asyncio
import hashlib
import json
import uuid
from typing import Any

from infra.stores.audit_trail import chain_ok, fetch_trail
from tests.portal.conftest import CLIENT_IP, USER_AGENT, Portal, PortalFactory
from tests.support import GOOD_ACCOUNT, GOOD_ROUTING, create_invoice, latest_code, outbox_messages, wrong_code

BAD_ROUTING = "011000016"  # nine digits, fails the ABA checksum


def unique_phone() -> str:
    return f"+1555{uuid.uuid4().int % 10_000_000:07d}"


def unique_email() -> str:
    return f"payer-{uuid.uuid4().hex[:8]}@example.com"


def bank(**overrides: Any) -> dict[str, Any]:
    body = {
        "method": "echeck",
        "account_holder": "Charles Babbage",
        "routing_number": GOOD_ROUTING,
        "account_number": GOOD_ACCOUNT,
        "account_type": "checking",
    }
    body.update(overrides)
    return body


def path(session_id: str, suffix: str = "") -> str:
    return f"/api/portal/sessions/{session_id}{suffix}"


async def verified_session(portal: Portal, phone: str | None = None) -> tuple[str, dict[str, Any]]:
    phone = phone or unique_phone()
    inv = await create_invoice(portal.pool, phone=phone, email=unique_email())
    opened = await portal.open(inv.invoice_id)
    auth = portal.auth(inv.invoice_id)
    r = await portal.http.post(path(opened["session_id"], "/code"), json={"channel": "sms"}, headers=auth)
    assert r.status_code == 200, r.text
    code = await latest_code(portal.pool, phone)
    r = await portal.http.post(path(opened["session_id"], "/verify"), json={"code": code}, headers=auth)
    assert r.json()["verified"] is True
    return inv.invoice_id, opened


# --- the rows ---------------------------------------------------------------------------------------


async def test_open_session_answers_invoice_payer_and_masked_channels(portal: Portal) -> None:
    inv = await create_invoice(portal.pool, phone="+15555550142", email="charles.b@example.com")
    body = await portal.open(inv.invoice_id)
    assert body["session_id"] and body["status"] == "CHOOSING_CHANNEL"
    assert body["invoice"] == {
        "invoice_id": inv.invoice_id,
        "number": inv.invoice_id,
        "amount_cents": 125000,
        "currency": "USD",
        "kind": "invoice",
    }
    assert body["payer"] == {"name": "Designated Payer"}
    assert body["channels"] == [
        {"channel": "email", "destination": "c•••@example.com"},
        {"channel": "sms", "destination": "•••-•••-0142"},
    ]
    assert body["otp_required"] is True
    assert "charles.b@example.com" not in str(body) and "5555550142" not in str(body)

    r = await portal.http.get(path(body["session_id"]), headers=portal.auth(inv.invoice_id))
    assert r.status_code == 200
    got = r.json()
    for field in ("attempts_remaining", "code_expires_at", "resend_available_at", "payment"):
        assert field in got
    assert got["attempts_remaining"] == 5 and got["payment"] is None and got["code_expires_at"] is None


async def test_whole_payment_through_the_api_records_ip_and_user_agent(portal: Portal) -> None:
    phone = unique_phone()
    inv = await create_invoice(portal.pool, phone=phone, email=unique_email())
    auth = portal.auth(inv.invoice_id)
    sid = (await portal.open(inv.invoice_id))["session_id"]

    r = await portal.http.post(path(sid, "/code"), json={"channel": "sms"}, headers=auth)
    assert r.status_code == 200
    sent = r.json()
    assert sent["status"] == "AWAITING_CODE" and sent["channel"] == "sms"
    assert sent["destination"] == f"•••-•••-{phone[-4:]}"
    assert sent["code_expires_at"] and sent["resend_available_at"]

    code = await latest_code(portal.pool, phone)
    r = await portal.http.post(path(sid, "/verify"), json={"code": wrong_code(code)}, headers=auth)
    assert r.status_code == 200
    assert r.json() == {
        "session_id": sid,
        "verified": False,
        "status": "AWAITING_CODE",
        "attempts_remaining": 4,
        "reason": "mismatch",
    }
    r = await portal.http.post(path(sid, "/verify"), json={"code": f" {code} "}, headers=auth)
    assert r.json()["verified"] is True and r.json()["status"] == "AWAITING_PAYMENT"
    assert r.json()["attempts_remaining"] == 4

    r = await portal.http.post(path(sid, "/payment"), json=bank(), headers=auth)
    assert r.status_code == 200, r.text
    paid = r.json()
    assert paid["status"] == "PAID"
    assert paid["payment"]["payment_id"] and paid["payment"]["amount_cents"] == 125000
    assert paid["payment"]["account_last4"] == GOOD_ACCOUNT[-4:]

    state = (await portal.http.get(path(sid), headers=auth)).json()
    assert state["status"] == "PAID" and state["payment"]["payment_id"] == paid["payment"]["payment_id"]

    trail = await fetch_trail(portal.pool, inv.invoice_id)
    customer_events = [e for e in trail if e["actor"] == "customer"]
    assert {e["event_type"] for e in customer_events} >= {
        "ATTEMPT_STARTED",
        "OTP_SENT",
        "OTP_VERIFY_FAILED",
        "OTP_VERIFIED",
        "ACCOUNT_VALIDATED",
        "PAYMENT_SUBMITTED",
    }
    assert all(e["ip"] == CLIENT_IP and e["user_agent"] == USER_AGENT for e in customer_events)
    assert await chain_ok(portal.pool, inv.invoice_id, key=portal.harness.settings.audit_key())
    payment = await portal.pool.fetchrow(
        "SELECT ip, user_agent FROM payments WHERE invoice_id = $1", inv.invoice_id
    )
    assert (payment["ip"], payment["user_agent"]) == (CLIENT_IP, USER_AGENT)


async def test_cancel_then_cancel_again_is_409_naming_the_state(portal: Portal) -> None:
    inv = await create_invoice(portal.pool, phone=unique_phone())
    auth = portal.auth(inv.invoice_id)
    sid = (await portal.open(inv.invoice_id))["session_id"]
    r = await portal.http.post(path(sid, "/cancel"), headers=auth)
    assert r.status_code == 200 and r.json() == {"session_id": sid, "status": "CANCELLED"}
    r = await portal.http.post(path(sid, "/cancel"), headers=auth)
    assert r.status_code == 409 and r.json()["status"] == "CANCELLED" and "CANCELLED" in r.json()["message"]
    # A cancelled attempt lets a new one start.
    again = await portal.open(inv.invoice_id)
    assert again["session_id"] != sid and again["status"] == "CHOOSING_CHANNEL"


async def test_deposit_needs_no_code(portal: Portal) -> None:
    inv = await create_invoice(portal.pool, kind="deposit", amount_cents=20000, phone=unique_phone())
    auth = portal.auth(inv.invoice_id)
    opened = await portal.open(inv.invoice_id)
    assert opened["status"] == "AWAITING_PAYMENT" and opened["otp_required"] is False
    assert opened["invoice"]["kind"] == "deposit"
    r = await portal.http.post(path(opened["session_id"], "/code"), json={"channel": "sms"}, headers=auth)
    assert r.status_code == 409 and r.json()["status"] == "AWAITING_PAYMENT"
    r = await portal.http.post(path(opened["session_id"], "/payment"), json=bank(method="ach"), headers=auth)
    assert r.status_code == 200 and r.json()["status"] == "PAID"
    assert r.json()["payment"]["amount_cents"] == 20000


async def test_declined_payment_names_the_reason(portal: Portal) -> None:
    invoice_id, opened = await verified_session(portal)
    r = await portal.http.post(
        path(opened["session_id"], "/payment"),
        json=bank(account_number="000222222227"),
        headers=portal.auth(invoice_id),
    )
    assert r.status_code == 200
    assert r.json()["status"] == "DECLINED"
    assert r.json()["payment"]["decline_reason"] == "insufficient_funds"


async def test_no_contact_method_is_a_state_not_an_error(portal: Portal) -> None:
    inv = await create_invoice(portal.pool, email=None, phone=None)
    opened = await portal.open(inv.invoice_id)
    assert opened["status"] == "NO_CONTACT_METHOD" and opened["channels"] == []
    assert "contact" in (opened["reason"] or "").lower()


async def test_one_channel_on_file_offers_only_that_one(portal: Portal) -> None:
    inv = await create_invoice(portal.pool, email=unique_email(), phone=None)
    opened = await portal.open(inv.invoice_id)
    assert [c["channel"] for c in opened["channels"]] == ["email"]
    r = await portal.http.post(
        path(opened["session_id"], "/code"), json={"channel": "sms"}, headers=portal.auth(inv.invoice_id)
    )
    assert r.status_code == 422 and r.json()["error"] == "ChannelUnavailable"


# --- 401 / 403 / 404 -------------------------------------------------------------------------------------


async def test_missing_forged_and_expired_tokens_are_401(portal: Portal) -> None:
    inv = await create_invoice(portal.pool, phone=unique_phone())
    sid = (await portal.open(inv.invoice_id))["session_id"]
    good = portal.token(inv.invoice_id)
    head, _, _ = good.rpartition(".")
    forged_sig = f"{head}.{'A' * 43}"
    other_key = type(portal.signer)("some-other-signing-key", ttl_seconds=600).issue(inv.invoice_id)

    r = await portal.http.post("/api/portal/sessions")
    assert r.status_code == 401 and r.json()["error"] == "TokenMissing"
    assert r.headers["www-authenticate"] == "Bearer"
    for bad in (forged_sig, other_key, "not-a-token", good + "x"):
        for method, url in (("POST", "/api/portal/sessions"), ("GET", path(sid))):
            r = await portal.http.request(method, url, headers={"Authorization": f"Bearer {bad}"})
            assert r.status_code == 401, (bad, url)
            assert r.json()["error"] == "TokenInvalid"
    r = await portal.http.get(path(sid), headers={"Authorization": f"Basic {good}"})
    assert r.status_code == 401

    expired = portal.expired_token(inv.invoice_id)
    for method, url in (("POST", "/api/portal/sessions"), ("GET", path(sid)), ("POST", path(sid, "/cancel"))):
        r = await portal.http.request(method, url, headers={"Authorization": f"Bearer {expired}"})
        assert r.status_code == 401 and r.json()["error"] == "TokenExpired"


async def test_another_invoices_token_is_403_on_every_session_call(portal: Portal) -> None:
    victim = await create_invoice(portal.pool, phone=unique_phone())
    attacker = await create_invoice(portal.pool, phone=unique_phone())
    sid = (await portal.open(victim.invoice_id))["session_id"]
    wrong = portal.auth(attacker.invoice_id)
    calls = [
        ("GET", path(sid), None),
        ("POST", path(sid, "/code"), {"channel": "sms"}),
        ("POST", path(sid, "/verify"), {"code": "123456"}),
        ("POST", path(sid, "/payment"), bank()),
        ("POST", path(sid, "/cancel"), None),
    ]
    for method, url, body in calls:
        r = await portal.http.request(method, url, json=body, headers=wrong)
        assert r.status_code == 403, (url, r.text)
        assert r.json()["error"] == "WrongInvoice"
    # Nothing reached the victim's attempt.
    state = (await portal.http.get(path(sid), headers=portal.auth(victim.invoice_id))).json()
    assert state["status"] == "CHOOSING_CHANNEL" and state["sends_remaining"] == 5
    assert await outbox_messages(portal.pool, victim.phone or "") == []


async def test_unknown_sessions_and_invoices_are_404(portal: Portal) -> None:
    inv = await create_invoice(portal.pool, phone=unique_phone())
    auth = portal.auth(inv.invoice_id)
    for sid in ("nonsense", f"{inv.invoice_id}~not-a-run", f"{inv.invoice_id}~{uuid.uuid4()}", "~", "%7E"):
        r = await portal.http.get(path(sid), headers=auth)
        assert r.status_code == 404, sid
        r = await portal.http.post(path(sid, "/code"), json={"channel": "sms"}, headers=auth)
        assert r.status_code == 404, sid
    r = await portal.http.post(
        "/api/portal/sessions", headers=portal.auth(f"INV-NOPE-{uuid.uuid4().hex[:6]}")
    )
    assert r.status_code == 404 and r.json()["error"] == "InvoiceNotFound"


# --- 409 ------------------------------------------------------------------------------------------------------


async def test_wrong_state_calls_are_409_naming_the_state(portal: Portal) -> None:
    inv = await create_invoice(portal.pool, phone=unique_phone())
    auth = portal.auth(inv.invoice_id)
    sid = (await portal.open(inv.invoice_id))["session_id"]
    r = await portal.http.post(path(sid, "/verify"), json={"code": "123456"}, headers=auth)
    assert r.status_code == 409 and r.json()["status"] == "CHOOSING_CHANNEL"
    assert r.json()["error"] == "InvalidState"
    r = await portal.http.post(path(sid, "/payment"), json=bank(), headers=auth)
    assert r.status_code == 409 and r.json()["status"] == "CHOOSING_CHANNEL"

    invoice_id, opened = await verified_session(portal)
    auth = portal.auth(invoice_id)
    sid = opened["session_id"]
    r = await portal.http.post(path(sid, "/code"), json={"channel": "sms"}, headers=auth)
    assert r.status_code == 409 and r.json()["status"] == "AWAITING_PAYMENT"
    r = await portal.http.post(path(sid, "/verify"), json={"code": "123456"}, headers=auth)
    assert r.status_code == 409 and r.json()["status"] == "AWAITING_PAYMENT"
    assert (await portal.http.post(path(sid, "/payment"), json=bank(), headers=auth)).status_code == 200
    # The attempt has finished: every action names the state it ended in.
    for suffix, body in (("/code", {"channel": "sms"}), ("/payment", bank()), ("/cancel", None)):
        r = await portal.http.post(path(sid, suffix), json=body, headers=auth)
        assert r.status_code == 409, (suffix, r.text)
        assert r.json()["status"] == "PAID" and "PAID" in r.json()["message"]
    r = await portal.http.post("/api/portal/sessions", headers=auth)
    assert r.status_code == 409 and r.json()["error"] == "InvoiceAlreadyPaid" and r.json()["status"] == "PAID"


# --- 422 --------------------------------------------------------------------------------------------------------


async def test_bad_routing_number_and_other_malformed_input_are_422(portal: Portal) -> None:
    invoice_id, opened = await verified_session(portal)
    auth = portal.auth(invoice_id)
    sid = opened["session_id"]
    r = await portal.http.post(path(sid, "/payment"), json=bank(routing_number=BAD_ROUTING), headers=auth)
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "InvalidInput" and "ABA" in body["message"]
    assert body["detail"][0]["loc"][-1] == "routing_number"
    assert BAD_ROUTING not in r.text and GOOD_ACCOUNT not in r.text  # bank numbers never echoed

    malformed: list[Any] = [
        bank(routing_number="12345"),
        bank(routing_number="abcdefghi"),
        bank(account_number="12ab"),
        bank(account_number="123"),
        bank(account_type="brokerage"),
        bank(method="card"),
        bank(account_holder="   "),
        {k: v for k, v in bank().items() if k != "account_holder"},
        bank(email="someone@example.com"),
        [],
        "nope",
    ]
    for payload in malformed:
        r = await portal.http.post(path(sid, "/payment"), json=payload, headers=auth)
        assert r.status_code == 422, (payload, r.text)
    r = await portal.http.post(
        path(sid, "/payment"), content=b"{not json", headers={**auth, "Content-Type": "application/json"}
    )
    assert r.status_code == 422
    # Still waiting for a good submission: refused input changed nothing.
    state = (await portal.http.get(path(sid), headers=auth)).json()
    assert state["status"] == "AWAITING_PAYMENT"


async def test_code_and_channel_input_is_validated(portal: Portal) -> None:
    inv = await create_invoice(portal.pool, phone=unique_phone(), email=unique_email())
    auth = portal.auth(inv.invoice_id)
    sid = (await portal.open(inv.invoice_id))["session_id"]
    for payload in ({"channel": "fax"}, {}, {"channel": None}):
        r = await portal.http.post(path(sid, "/code"), json=payload, headers=auth)
        assert r.status_code == 422, payload
    assert (
        await portal.http.post(path(sid, "/code"), json={"channel": "sms"}, headers=auth)
    ).status_code == 200
    bad_codes: list[dict[str, Any]] = [
        {"code": "abcdef"},
        {"code": ""},
        {"code": "1" * 40},
        {},
        {"code": 123456},
    ]
    for payload in bad_codes:
        r = await portal.http.post(path(sid, "/verify"), json=payload, headers=auth)
        assert r.status_code == 422, payload
    state = (await portal.http.get(path(sid), headers=auth)).json()
    assert state["attempts_remaining"] == 5  # malformed input is not a guess


async def test_a_request_can_never_add_or_change_a_destination(portal: Portal) -> None:
    inv = await create_invoice(portal.pool, phone=unique_phone(), email=unique_email())
    auth = portal.auth(inv.invoice_id)
    attacker_phone, attacker_email = "+15550009999", "attacker@example.net"
    r = await portal.http.post(
        "/api/portal/sessions", json={"email": attacker_email, "phone": attacker_phone}, headers=auth
    )
    assert r.status_code == 200
    sid = r.json()["session_id"]
    for extra in (
        {"destination": attacker_phone},
        {"phone": attacker_phone},
        {"to": attacker_phone},
        {"email": attacker_email},
    ):
        r = await portal.http.post(path(sid, "/code"), json={"channel": "sms", **extra}, headers=auth)
        assert r.status_code == 422, extra
    assert await outbox_messages(portal.pool, attacker_phone) == []
    assert await outbox_messages(portal.pool, attacker_email) == []
    r = await portal.http.post(path(sid, "/code"), json={"channel": "email"}, headers=auth)
    assert r.status_code == 200
    assert len(await outbox_messages(portal.pool, inv.email or "")) == 1


# --- 429 -----------------------------------------------------------------------------------------------------------


async def test_resend_inside_the_cooldown_is_429_with_retry_after(portal_factory: PortalFactory) -> None:
    async with portal_factory(otp_resend_cooldown_seconds=30) as portal:
        inv = await create_invoice(portal.pool, phone=unique_phone(), email=unique_email())
        auth = portal.auth(inv.invoice_id)
        sid = (await portal.open(inv.invoice_id))["session_id"]
        first = await portal.http.post(path(sid, "/code"), json={"channel": "sms"}, headers=auth)
        assert first.status_code == 200
        for channel in ("sms", "email"):  # switching channel is asking again, too
            r = await portal.http.post(path(sid, "/code"), json={"channel": channel}, headers=auth)
            assert r.status_code == 429, r.text
            assert r.json()["error"] == "ResendTooSoon"
            assert 0 < r.json()["retry_after"] <= 30
            assert r.headers["retry-after"] == str(r.json()["retry_after"])
        state = (await portal.http.get(path(sid), headers=auth)).json()
        assert (
            state["sends_remaining"] == 4
            and state["resend_available_at"] == first.json()["resend_available_at"]
        )


async def test_five_wrong_codes_lock_and_a_locked_invoice_refuses_a_new_attempt(portal: Portal) -> None:
    phone = unique_phone()
    inv = await create_invoice(portal.pool, phone=phone)
    auth = portal.auth(inv.invoice_id)
    sid = (await portal.open(inv.invoice_id))["session_id"]
    await portal.http.post(path(sid, "/code"), json={"channel": "sms"}, headers=auth)
    bad = wrong_code(await latest_code(portal.pool, phone))
    answers = []
    for _ in range(5):
        r = await portal.http.post(path(sid, "/verify"), json={"code": bad}, headers=auth)
        assert r.status_code == 200
        answers.append(r.json())
    assert [a["attempts_remaining"] for a in answers] == [4, 3, 2, 1, 0]
    assert answers[-1]["status"] == "LOCKED" and not answers[-1]["verified"]

    state = (await portal.http.get(path(sid), headers=auth)).json()
    assert state["status"] == "LOCKED" and state["retry_at"] is not None

    r = await portal.http.post("/api/portal/sessions", headers=auth)
    assert r.status_code == 429
    assert r.json()["error"] == "InvoiceLocked" and r.json()["status"] == "LOCKED"
    assert 1700 <= r.json()["retry_after"] <= 1801
    r = await portal.http.post(path(sid, "/verify"), json={"code": bad}, headers=auth)
    assert r.status_code == 409 and r.json()["status"] == "LOCKED"
    trail = [e["event_type"] for e in await fetch_trail(portal.pool, inv.invoice_id)]
    assert trail.count("OTP_VERIFY_FAILED") == 5 and "OTP_LOCKED" in trail


# --- joining and retries -----------------------------------------------------------------------------------------


async def test_two_concurrent_opens_join_one_attempt(portal: Portal) -> None:
    inv = await create_invoice(portal.pool, phone=unique_phone())
    auth = portal.auth(inv.invoice_id)
    first, second = await asyncio.gather(
        portal.http.post("/api/portal/sessions", headers=auth),
        portal.http.post("/api/portal/sessions", headers=portal.auth(inv.invoice_id)),
    )
    assert first.status_code == second.status_code == 200
    assert first.json()["session_id"] == second.json()["session_id"]
    reload = await portal.open(inv.invoice_id)
    assert reload["session_id"] == first.json()["session_id"]
    started = [
        e for e in await fetch_trail(portal.pool, inv.invoice_id) if e["event_type"] == "ATTEMPT_STARTED"
    ]
    assert len(started) == 1


async def test_a_retried_post_with_the_same_idempotency_key_acts_once(portal: Portal) -> None:
    phone = unique_phone()
    inv = await create_invoice(portal.pool, phone=phone)
    auth = portal.auth(inv.invoice_id)
    sid = (await portal.open(inv.invoice_id))["session_id"]
    await portal.http.post(path(sid, "/code"), json={"channel": "sms"}, headers=auth)
    bad = {"code": wrong_code(await latest_code(portal.pool, phone))}
    key = {**auth, "Idempotency-Key": "tap-1"}
    one = await portal.http.post(path(sid, "/verify"), json=bad, headers=key)
    two = await portal.http.post(path(sid, "/verify"), json=bad, headers=key)
    assert one.json() == two.json() and one.json()["attempts_remaining"] == 4
    # Without a key, the same wrong code typed again is a second guess.
    three = await portal.http.post(path(sid, "/verify"), json=bad, headers=auth)
    assert three.json()["attempts_remaining"] == 3


async def test_typed_codes_never_reach_history_through_update_ids(portal: Portal) -> None:
    phone = unique_phone()
    inv = await create_invoice(portal.pool, phone=phone)
    auth = portal.auth(inv.invoice_id)
    sid = (await portal.open(inv.invoice_id))["session_id"]
    await portal.http.post(path(sid, "/code"), json={"channel": "sms"}, headers=auth)
    code = await latest_code(portal.pool, phone)
    body = {"code": wrong_code(code)}
    key = "guessable-key"
    await portal.http.post(path(sid, "/verify"), json=body, headers={**auth, "Idempotency-Key": key})
    await portal.http.post(
        path(sid, "/verify"), json={"code": code}, headers={**auth, "Idempotency-Key": "k2"}
    )

    _, run_id = sid.split("~")
    history = await portal.harness.client.get_workflow_handle(
        f"pay-invoice-{inv.invoice_id}", run_id=run_id
    ).fetch_history()
    text = history.to_json()
    for typed in (code, wrong_code(code)):
        payload = json.dumps({"code": typed}, separators=(",", ":"))
        for k in (key, "k2"):
            unkeyed = hashlib.sha256("\x1f".join((sid, "verify", k, payload)).encode()).hexdigest()
            assert unkeyed[:40] not in text
        assert hashlib.sha256(typed.encode()).hexdigest() not in text
        assert f'"{typed}"' not in text


async def test_payment_status_needs_the_link_and_answers_only_its_invoice(portal: Portal) -> None:
    """`GET /api/portal/payment` is authorized like every customer call; its payments are tested with the
    processor service in tests/lifecycle/test_payment_status_views.py."""
    inv = await create_invoice(portal.pool, amount_cents=48000, phone=unique_phone())
    r = await portal.http.get("/api/portal/payment")
    assert r.status_code == 401 and r.json()["error"] == "TokenMissing"
    expired = portal.expired_token(inv.invoice_id)
    r = await portal.http.get("/api/portal/payment", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401 and r.json()["error"] == "TokenExpired"
    r = await portal.http.get("/api/portal/payment", headers=portal.staff)
    assert r.status_code == 401
    r = await portal.http.get("/api/portal/payment", headers=portal.auth(f"INV-NOPE-{uuid.uuid4().hex[:6]}"))
    assert r.status_code == 404 and r.json()["error"] == "InvoiceNotFound"
    r = await portal.http.get("/api/portal/payment", headers=portal.auth(inv.invoice_id))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["payment"] is None and body["can_pay"] is True
    assert body["invoice"] == {
        "number": inv.invoice_id,
        "amount_cents": 48000,
        "balance_cents": 48000,
        "currency": "USD",
        "status": "open",
    }
