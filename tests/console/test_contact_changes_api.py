"""SPEC §10/§11 through the staff API: contact edits, payer changes, and what they cancel, revoke and tell.

Real portal app, real worker, real PostgreSQL; each test has its own copy of a demo customer.
"""

import base64
import secrets
import time

from infra.stores.audit_trail import fetch_chain, fetch_trail
from tests.console.support import audit_row, eventually
from tests.portal.conftest import CLIENT_IP, Portal, clone_demo_customer
from tests.support import outbox_messages


async def test_patch_refuses_bad_details_and_writes_nothing(portal: Portal) -> None:
    demo = await clone_demo_customer(portal.pool, "C-1003")
    alan = demo.contacts["CT-1003-ALAN"]
    url = f"/api/staff/contacts/{alan}"
    for body, field in (
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"email": "x\x00y@example.com"}, "email"),
        ({"phone": "5555550103"}, "phone"),  # not E.164
        ({"phone": "+" + "".join(chr(0xFF10 + int(d)) for d in "15555550103")}, "phone"),  # fullwidth
        ({"phone": "+1555555\x000103"}, "phone"),
        ({"phone": "+1" + "5" * 30}, "phone"),
    ):
        r = await portal.http.patch(url, json=body, headers=portal.staff)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["detail"][0]["loc"][-1] == field
    r = await portal.http.patch(url, json={"name": "Mallory"}, headers=portal.staff)
    assert r.status_code == 422  # unknown fields are refused
    r = await portal.http.patch(
        "/api/staff/contacts/CT-NOPE-X", json={"phone": "+15555550100"}, headers=portal.staff
    )
    assert r.status_code == 404 and r.json()["error"] == "ContactNotFound"
    r = await portal.http.patch(url, json={"phone": "+15555550100"})
    assert r.status_code == 401  # staff token required
    assert await fetch_chain(portal.pool, f"customer:{demo.customer_id}") == []
    row = await portal.pool.fetchrow("SELECT phone, email FROM contacts WHERE id = $1", alan)
    assert (row["phone"], row["email"]) == ("+15555550103", None)


async def test_changing_a_contact_who_is_not_the_payer_revokes_nothing(portal: Portal) -> None:
    demo = await clone_demo_customer(portal.pool, "C-1001")
    invoice_id = demo.invoices["INV-1001"]
    opened = await portal.open(invoice_id)
    token = portal.token(invoice_id)
    r = await portal.http.patch(
        f"/api/staff/contacts/{demo.contacts['CT-1001-ADA']}",
        json={"phone": "+1 (555) 555-0199"},
        headers={**portal.staff, "X-Staff-User": "mallory"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["changed_fields"] == ["phone"] and body["links_revoked_before"] is None
    assert body["cancelled_invoice_ids"] == [] and body["notified"] == []
    ada = next(c for c in body["contacts"] if c["name"] == "Ada Lovelace")
    assert ada["phone"] == "+15555550199"  # stored in E.164
    (event,) = await fetch_chain(portal.pool, f"customer:{demo.customer_id}")
    assert event["event_type"] == "CONTACT_CHANGED" and event["id"] == body["audit_event_id"]
    assert event["actor"] == "api" and event["ip"] == CLIENT_IP  # the header chose nothing
    assert event["details"]["changes"] == {"phone": {"old": "•••-•••-0101", "new": "•••-•••-0199"}}
    assert "+15555550101" not in str(event) and "+15555550199" not in str(event)
    # Charles still pays: the attempt runs on and the link still works.
    state = await portal.harness.gateway.state(invoice_id)
    assert state.run_id == opened["session_id"].split("~")[1] and not state.status.is_terminal
    r = await portal.http.post("/api/portal/sessions", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["session_id"] == opened["session_id"]


async def test_changing_the_payers_phone_cancels_revokes_and_tells_both_numbers(portal: Portal) -> None:
    demo = await clone_demo_customer(portal.pool, "C-1003")
    invoice_id = demo.invoices["INV-1003"]
    old_token = portal.token(invoice_id)
    opened = await portal.open(invoice_id)
    assert opened["payer"]["name"] == "Alan Turing"
    new_phone = f"+1555{secrets.randbelow(10**7):07d}"
    told_old = len(await outbox_messages(portal.pool, "+15555550103"))

    r = await portal.http.patch(
        f"/api/staff/contacts/{demo.contacts['CT-1003-ALAN']}",
        json={"phone": new_phone},
        headers=portal.staff,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["cancelled_invoice_ids"] == [invoice_id] and body["links_revoked_before"]
    assert sorted(body["notified"]) == sorted(["•••-•••-0103", f"•••-•••-{new_phone[-4:]}"])
    assert body["problems"] == []
    old_msgs = await outbox_messages(portal.pool, "+15555550103")
    assert len(old_msgs) == told_old + 1 and "no longer used" in old_msgs[-1]["body"]
    (new_msg,) = await outbox_messages(portal.pool, new_phone)
    assert "will now receive verification codes" in new_msg["body"]

    cancelled = await eventually(
        lambda: audit_row(portal.pool, invoice_id, "ATTEMPT_CANCELLED"), "ATTEMPT_CANCELLED"
    )
    assert cancelled["actor"] == "api" and cancelled["run_id"] == opened["session_id"].split("~")[1]
    assert "payer contact details changed by staff" in str(cancelled["details"])

    # The link sent before the change is revoked, on the API and on the page, audited once per link.
    for _ in range(2):
        r = await portal.http.post("/api/portal/sessions", headers={"Authorization": f"Bearer {old_token}"})
        assert r.status_code == 401 and r.json()["reason"] == "link_revoked", r.text
    # What became of a payment is the new payer's to see, not the old link's (SPEC §9 pay link).
    r = await portal.http.get("/api/portal/payment", headers={"Authorization": f"Bearer {old_token}"})
    assert r.status_code == 401 and r.json()["reason"] == "link_revoked", r.text
    page = await portal.http.get(f"/pay/{old_token}")
    assert page.status_code == 401 and "This link was replaced" in page.text
    revoked = [e for e in await fetch_trail(portal.pool, invoice_id) if e["event_type"] == "PAY_LINK_REVOKED"]
    assert len(revoked) == 1 and old_token not in str(revoked)

    # A new payment request works, and asking for another does not revoke the first.
    first = (
        await portal.http.post(f"/api/staff/invoices/{invoice_id}/payment-requests", headers=portal.staff)
    ).json()
    assert first["delivery"]["destination"] == f"•••-•••-{new_phone[-4:]}"
    second = await portal.http.post(
        f"/api/staff/invoices/{invoice_id}/payment-requests", headers=portal.staff
    )
    assert second.status_code == 200
    first_token = first["url"].rsplit("/", 1)[1]
    r = await portal.http.post("/api/portal/sessions", headers={"Authorization": f"Bearer {first_token}"})
    assert r.status_code == 200, r.text
    assert r.json()["channels"] == [{"channel": "sms", "destination": f"•••-•••-{new_phone[-4:]}"}]


async def test_a_new_payer_cancels_the_running_attempt_and_tells_old_and_new(portal: Portal) -> None:
    demo = await clone_demo_customer(portal.pool, "C-1001")
    invoice_id = demo.invoices["INV-1001"]
    old_token = portal.token(invoice_id)
    await portal.open(invoice_id)
    ada, charles = demo.contacts["CT-1001-ADA"], demo.contacts["CT-1001-CHARLES"]
    r = await portal.http.put(
        f"/api/staff/customers/{demo.customer_id}/portal-payer",
        json={"contact_id": ada},
        headers={**portal.staff, "X-Staff-User": "someone-else"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["payer_contact_id"] == ada and body["previous_payer_contact_id"] == charles
    # DEP-1001 had no attempt; INV-1001's running one is cancelled.
    assert body["cancelled_invoice_ids"] == [invoice_id]
    assert set(body["notified"]) == {"c•••@example.com", "•••-•••-0102", "a•••@example.com", "•••-•••-0101"}
    designated = (await fetch_chain(portal.pool, f"customer:{demo.customer_id}"))[-1]
    assert designated["event_type"] == "PORTAL_PAYER_DESIGNATED" and designated["actor"] == "api"
    cancelled = await eventually(
        lambda: audit_row(portal.pool, invoice_id, "ATTEMPT_CANCELLED"), "ATTEMPT_CANCELLED"
    )
    assert "payer changed by staff" in str(cancelled["details"])
    r = await portal.http.post("/api/portal/sessions", headers={"Authorization": f"Bearer {old_token}"})
    assert r.status_code == 401 and r.json()["reason"] == "link_revoked"
    # The deposit's links were issued before the change too.
    r = await portal.http.post(
        "/api/portal/sessions",
        headers={"Authorization": f"Bearer {portal.token(demo.invoices['DEP-1001'], now=time.time() - 5)}"},
    )
    assert r.status_code == 401 and r.json()["reason"] == "link_revoked"
    # A link made now opens a new attempt for Ada.
    opened = await portal.open(invoice_id)
    assert opened["payer"]["name"] == "Ada Lovelace"


async def test_links_minted_before_the_issue_time_was_carried_are_judged_by_expiry(portal: Portal) -> None:
    """Tokens with a 9-byte nonce (the earlier format) have no issue time: expiry - LINK_TTL_SECONDS."""
    demo = await clone_demo_customer(portal.pool, "C-1003")
    invoice_id = demo.invoices["INV-1003"]
    signer = portal.signer
    ttl = portal.harness.settings.link_ttl_seconds

    def legacy_token(issued: float) -> str:
        def b64(raw: bytes) -> str:
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        signed = ".".join(
            ("p1", b64(invoice_id.encode()), str(int(issued) + ttl), b64(secrets.token_bytes(9)))
        )
        mac: bytes = signer._mac(signed)
        return f"{signed}.{b64(mac)}"

    before = legacy_token(time.time() - 60)
    assert signer.verify(before).issued_at is None
    r = await portal.http.patch(
        f"/api/staff/contacts/{demo.contacts['CT-1003-ALAN']}",
        json={"email": "alan@example.com"},
        headers=portal.staff,
    )
    assert r.status_code == 200 and r.json()["links_revoked_before"]
    r = await portal.http.post("/api/portal/sessions", headers={"Authorization": f"Bearer {before}"})
    assert r.status_code == 401 and r.json()["reason"] == "link_revoked"
    after = legacy_token(time.time() + 2)
    r = await portal.http.post("/api/portal/sessions", headers={"Authorization": f"Bearer {after}"})
    assert r.status_code == 200, r.text
