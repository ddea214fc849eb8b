"""SPEC §4 staff API: the payer tag, designating the payer, payment requests, the audit trail."""

import uuid

from infra.stores.audit_trail import fetch_chain
from tests.portal.conftest import CLIENT_IP, Portal, clone_demo_customer
from tests.support import create_invoice, outbox_messages


async def test_staff_calls_need_the_staff_token(portal: Portal) -> None:
    inv = await create_invoice(portal.pool)
    urls = [
        ("GET", f"/api/staff/customers/{inv.customer_id}/contacts"),
        ("PUT", f"/api/staff/customers/{inv.customer_id}/portal-payer"),
        ("POST", f"/api/staff/invoices/{inv.invoice_id}/payment-requests"),
        ("GET", f"/api/staff/invoices/{inv.invoice_id}/audit"),
        ("GET", f"/api/staff/invoices/{inv.invoice_id}"),
    ]
    pay_link = portal.auth(inv.invoice_id)  # a customer's token is not a staff token
    for method, url in urls:
        for headers in ({}, {"Authorization": "Bearer wrong"}, pay_link):
            r = await portal.http.request(
                method, url, headers=headers, json={"contact_id": inv.primary_contact_id}
            )
            assert r.status_code == 401, (url, headers)
    # Nor is a staff token a pay link.
    r = await portal.http.post("/api/portal/sessions", headers=portal.staff)
    assert r.status_code == 401


async def test_contacts_carry_the_portal_payer_tag(portal: Portal) -> None:
    demo = await clone_demo_customer(portal.pool, "C-1001")
    r = await portal.http.get(f"/api/staff/customers/{demo.customer_id}/contacts", headers=portal.staff)
    assert r.status_code == 200
    body = r.json()
    tags = {c["contact_id"]: c["portal_payer"] for c in body["contacts"]}
    assert tags == {demo.contacts["CT-1001-CHARLES"]: True, demo.contacts["CT-1001-ADA"]: False}
    assert (
        body["payer_contact_id"] == demo.contacts["CT-1001-CHARLES"] and body["payer_source"] == "designated"
    )
    charles = next(c for c in body["contacts"] if c["portal_payer"])
    assert charles["name"] == "Charles Babbage" and charles["email"] == "charles@example.com"
    assert charles["receives_otp"] and charles["channels"] == ["email", "sms"]

    r = await portal.http.get(
        f"/api/staff/customers/C-NOPE-{uuid.uuid4().hex[:6]}/contacts", headers=portal.staff
    )
    assert r.status_code == 404


async def test_staff_can_see_why_a_payer_cannot_be_verified(portal: Portal) -> None:
    demo = await clone_demo_customer(portal.pool, "C-1004")
    body = (
        await portal.http.get(f"/api/staff/customers/{demo.customer_id}/contacts", headers=portal.staff)
    ).json()
    assert body["payer_source"] == "primary" and body["contacts"][0]["portal_payer"] is False
    assert body["contacts"][0]["channels"] == [] and "profile" in body["payer_problem"]


async def test_designating_a_payer_unmarks_the_old_one_and_is_audited(portal: Portal) -> None:
    demo = await clone_demo_customer(portal.pool, "C-1001")
    ada, charles = demo.contacts["CT-1001-ADA"], demo.contacts["CT-1001-CHARLES"]
    r = await portal.http.put(
        f"/api/staff/customers/{demo.customer_id}/portal-payer",
        json={"contact_id": ada},
        headers={**portal.staff, "X-Staff-User": "maria"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["payer_contact_id"] == ada and body["previous_payer_contact_id"] == charles
    assert {c["contact_id"]: c["portal_payer"] for c in body["contacts"]} == {ada: True, charles: False}
    rows = await portal.pool.fetch(
        "SELECT id FROM contacts WHERE customer_id = $1 AND portal_payer", demo.customer_id
    )
    assert [row["id"] for row in rows] == [ada]

    chain = await fetch_chain(portal.pool, f"customer:{demo.customer_id}")
    assert [e["event_type"] for e in chain] == ["PORTAL_PAYER_DESIGNATED"]
    event = chain[0]
    assert event["id"] == body["audit_event_id"]
    # The bearer token is shared by machines: the actor is `api`, whatever a header claims.
    assert event["actor"] == "api" and event["ip"] == CLIENT_IP
    assert event["payer_contact_id"] == ada and event["details"]["previous_payer_contact_id"] == charles

    # The next attempt's OTP goes to the new payer.
    opened = await portal.open(demo.invoices["INV-1001"])
    assert opened["payer"]["name"] == "Ada Lovelace"


async def test_designation_refuses_unknown_or_foreign_contacts(portal: Portal) -> None:
    demo = await clone_demo_customer(portal.pool, "C-1001")
    other = await clone_demo_customer(portal.pool, "C-1002")
    url = f"/api/staff/customers/{demo.customer_id}/portal-payer"
    r = await portal.http.put(url, json={"contact_id": other.contacts["CT-1002-GRACE"]}, headers=portal.staff)
    assert r.status_code == 404 and r.json()["error"] == "ContactNotFound"
    r = await portal.http.put(url, json={"contact_id": "CT-NOPE"}, headers=portal.staff)
    assert r.status_code == 404
    r = await portal.http.put(
        url, json={"contact_id": demo.contacts["CT-1001-ADA"], "email": "x@example.com"}, headers=portal.staff
    )
    assert r.status_code == 422
    r = await portal.http.put(url, json={}, headers=portal.staff)
    assert r.status_code == 422
    r = await portal.http.put(
        f"/api/staff/customers/C-NOPE-{uuid.uuid4().hex[:6]}/portal-payer",
        json={"contact_id": "x"},
        headers=portal.staff,
    )
    assert r.status_code == 404
    # Nothing changed, nothing audited.
    body = (
        await portal.http.get(f"/api/staff/customers/{demo.customer_id}/contacts", headers=portal.staff)
    ).json()
    assert body["payer_contact_id"] == demo.contacts["CT-1001-CHARLES"]
    assert await fetch_chain(portal.pool, f"customer:{demo.customer_id}") == []


async def test_payment_request_sends_a_working_link_to_the_payer(portal: Portal) -> None:
    demo = await clone_demo_customer(portal.pool, "C-1001")
    invoice_id = demo.invoices["INV-1001"]
    before = len(await outbox_messages(portal.pool, "charles@example.com"))
    r = await portal.http.post(
        f"/api/staff/invoices/{invoice_id}/payment-requests",
        headers={**portal.staff, "X-Staff-User": "maria"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["recipient"] == {
        "contact_id": demo.contacts["CT-1001-CHARLES"],
        "name": "Charles Babbage",
        "portal_payer": True,
        "channels": ["email", "sms"],
    }
    assert body["delivery"]["sent"] is True and body["delivery"]["channel"] == "email"
    assert body["delivery"]["destination"] == "c•••@example.com"
    url = body["url"]
    assert url.startswith(portal.harness.settings.portal_base_url + "/pay/")

    mails = await outbox_messages(portal.pool, "charles@example.com")
    assert len(mails) == before + 1 and url in mails[-1]["body"] and invoice_id in mails[-1]["subject"]

    token = url.rsplit("/", 1)[1]
    page = await portal.http.get(f"/pay/{token}")
    assert page.status_code == 200 and invoice_id in page.text
    r = await portal.http.post("/api/portal/sessions", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["payer"]["name"] == "Charles Babbage"

    trail = (await portal.http.get(f"/api/staff/invoices/{invoice_id}/audit", headers=portal.staff)).json()
    first = trail["events"][0]
    assert first["event_type"] == "PAYMENT_REQUEST_SENT" and first["actor"] == "api"
    assert first["payer_contact_id"] == demo.contacts["CT-1001-CHARLES"]
    assert token not in str(trail)  # the link is a credential; the trail keeps only its nonce


async def test_payment_request_falls_back_to_the_primary_and_to_sms(portal: Portal) -> None:
    demo = await clone_demo_customer(portal.pool, "C-1003")  # Alan: primary, phone only, not marked
    r = await portal.http.post(
        f"/api/staff/invoices/{demo.invoices['INV-1003']}/payment-requests", headers=portal.staff
    )
    assert r.status_code == 200
    body = r.json()
    assert body["recipient"]["name"] == "Alan Turing" and body["recipient"]["portal_payer"] is False
    assert body["delivery"]["channel"] == "sms" and body["delivery"]["destination"] == "•••-•••-0103"
    texts = await outbox_messages(portal.pool, "+15555550103")
    assert body["url"] in texts[-1]["body"]


async def test_payment_request_for_a_payer_without_contact_details_says_why(portal: Portal) -> None:
    demo = await clone_demo_customer(portal.pool, "C-1004")
    r = await portal.http.post(
        f"/api/staff/invoices/{demo.invoices['INV-1004']}/payment-requests", headers=portal.staff
    )
    assert r.status_code == 200
    body = r.json()
    assert body["delivery"]["sent"] is False and "profile" in body["delivery"]["problem"]
    assert body["url"] and body["recipient"]["name"] == "Kurt Goedel"


async def test_payment_request_refuses_unknown_and_paid_invoices(portal: Portal) -> None:
    r = await portal.http.post(
        f"/api/staff/invoices/INV-NOPE-{uuid.uuid4().hex[:6]}/payment-requests", headers=portal.staff
    )
    assert r.status_code == 404
    inv = await create_invoice(portal.pool)
    await portal.pool.execute(
        "UPDATE invoices SET status = 'paid', balance_cents = 0 WHERE id = $1", inv.invoice_id
    )
    r = await portal.http.post(f"/api/staff/invoices/{inv.invoice_id}/payment-requests", headers=portal.staff)
    assert r.status_code == 409 and r.json()["status"] == "PAID"


async def test_audit_trail_is_oldest_first_with_chain_ok(portal: Portal) -> None:
    inv = await create_invoice(portal.pool, phone="+15555550177")
    await portal.open(inv.invoice_id)
    r = await portal.http.get(f"/api/staff/invoices/{inv.invoice_id}/audit", headers=portal.staff)
    assert r.status_code == 200
    body = r.json()
    assert body["chain_ok"] is True and body["invoice_id"] == inv.invoice_id
    ids = [e["id"] for e in body["events"]]
    assert ids == sorted(ids) and body["events"][0]["event_type"] == "ATTEMPT_STARTED"
    assert body["events"][0]["ip"] == CLIENT_IP
    r = await portal.http.get(
        f"/api/staff/invoices/INV-NOPE-{uuid.uuid4().hex[:6]}/audit", headers=portal.staff
    )
    assert r.status_code == 404


async def test_invoice_answer_with_no_payment_yet_and_its_refusals(portal: Portal) -> None:
    """The payments themselves (statuses, return codes, times) are tested against the processor service
    in tests/lifecycle/test_payment_status_views.py; here the invoice part and the clean 4xx."""
    inv = await create_invoice(portal.pool, amount_cents=48000)
    r = await portal.http.get(f"/api/staff/invoices/{inv.invoice_id}", headers=portal.staff)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "invoice_id": inv.invoice_id,
        "number": inv.invoice_id,
        "customer_id": inv.customer_id,
        "kind": "invoice",
        "status": "open",
        "amount_cents": 48000,
        "balance_cents": 48000,
        "currency": "USD",
        "payments": [],
    }
    r = await portal.http.get(f"/api/staff/invoices/INV-NOPE-{uuid.uuid4().hex[:6]}", headers=portal.staff)
    assert r.status_code == 404 and r.json()["error"] == "InvoiceNotFound"
    for bad in ("x" * 201, "INV%00X", "INV%1FX", "INV%7FX"):
        r = await portal.http.get(f"/api/staff/invoices/{bad}", headers=portal.staff)
        assert 400 <= r.status_code < 500 and r.status_code != 404, (bad, r.status_code, r.text)
