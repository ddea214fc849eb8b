"""SPEC §12 /api/v1 resources on the real harness: customers, contacts, invoices, void, payment
requests, payments and events, with what each writes to the audit trail and the outbox."""

import json
import uuid
from typing import Any

from infra.stores import company_records as records
from tests.api_v1.conftest import Api, ApiFactory
from tests.console.support import audit_row, eventually
from tests.lifecycle.conftest import insert_accepted_payment
from tests.support import TestInvoice as InvoiceRef
from tests.support import outbox_messages


def tag() -> str:
    return uuid.uuid4().hex[:10]


async def events_of(api: Api, event_type: str, **match: str) -> list[dict[str, Any]]:
    rows = await api.portal.pool.fetch(
        "SELECT id, type, data FROM events WHERE type = $1 ORDER BY seq", event_type
    )
    found = []
    for row in rows:
        obj = json.loads(row["data"])["object"]
        if all(_dig(obj, path) == value for path, value in match.items()):
            found.append({"id": row["id"], "object": obj, "raw": row["data"]})
    return found


def _dig(obj: dict[str, Any], path: str) -> Any:
    for part in path.split("__"):
        obj = obj.get(part) if isinstance(obj, dict) else None  # type: ignore[assignment]
    return obj


async def customer_with_payer(api: Api) -> dict[str, str]:
    t = tag()
    ids = {
        "customer": f"CUS-{t}",
        "payer": f"CT-{t}-P",
        "payer_email": f"payer-{t}@example.com",
        "payer_phone": f"+1555{int(t[:6], 16) % 10**7:07d}",
        "invoice": f"INV-{t}",
    }
    r = await api.http.put(
        f"/api/v1/customers/{ids['customer']}", json={"name": "Acme Movers"}, headers=api.headers
    )
    assert r.status_code == 201, r.text
    r = await api.http.put(
        f"/api/v1/customers/{ids['customer']}/contacts/{ids['payer']}",
        json={
            "name": "Pat Payer",
            "email": ids["payer_email"],
            "phone": ids["payer_phone"],
            "primary": True,
            "portal_payer": True,
        },
        headers=api.headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["portal_payer"] is True and r.json()["primary"] is True
    r = await api.http.put(
        f"/api/v1/invoices/{ids['invoice']}",
        json={
            "customer_external_id": ids["customer"],
            "number": f"N-{t}",
            "kind": "invoice",
            "amount_cents": 125000,
            "currency": "USD",
            "due_date": "2026-12-31",
        },
        headers=api.headers,
    )
    assert r.status_code == 201, r.text
    ids["invoice_id"] = r.json()["id"]
    ids["customer_id"] = r.json()["customer"]["id"]
    payer = await records.contact_by_external(api.portal.pool, ids["customer_id"], ids["payer"])
    assert payer is not None
    ids["payer_id"] = payer["id"]
    return ids


async def test_customer_upsert_is_201_then_200_and_audited_with_the_key(api: Api) -> None:
    ext = f"CUS-{tag()}"
    r1 = await api.http.put(f"/api/v1/customers/{ext}", json={"name": "Acme"}, headers=api.headers)
    r2 = await api.http.put(f"/api/v1/customers/{ext}", json={"name": "Acme"}, headers=api.headers)
    r3 = await api.http.put(f"/api/v1/customers/{ext}", json={"name": "Acme Movers"}, headers=api.headers)
    assert [r.status_code for r in (r1, r2, r3)] == [201, 200, 200]
    assert r1.json()["id"] == r3.json()["id"] and r3.json()["name"] == "Acme Movers"
    audit = await api.portal.pool.fetch(
        "SELECT event_type, actor FROM audit_events WHERE customer_id = $1 ORDER BY id", r1.json()["id"]
    )
    assert [(a["event_type"], a["actor"]) for a in audit] == [
        ("CUSTOMER_CHANGED", f"api_key:{api.key_id}")
    ] * 2

    bad = await api.http.put("/api/v1/customers/has%20space", json={"name": "x"}, headers=api.headers)
    assert bad.status_code == 422 and bad.json()["param"] == "external_id"
    extra = await api.http.put(
        f"/api/v1/customers/{ext}", json={"name": "x", "admin": True}, headers=api.headers
    )
    assert extra.status_code == 422 and extra.json()["param"] == "admin"
    nul = await api.http.put(f"/api/v1/customers/{ext}", json={"name": "a\u0000b"}, headers=api.headers)
    assert nul.status_code == 422 and nul.json()["param"] == "name"
    _, scoped = await api.new_key("events:read")
    assert (
        await api.http.put(f"/api/v1/customers/{ext}", json={"name": "x"}, headers=api.bearer(scoped))
    ).status_code == 403


async def test_invoice_upsert_events_limits_and_lock(api: Api) -> None:
    ids = await customer_with_payer(api)
    url = f"/api/v1/invoices/{ids['invoice']}"
    body = {
        "customer_external_id": ids["customer"],
        "number": (await api.http.get(url, headers=api.headers)).json()["number"],
        "kind": "invoice",
        "amount_cents": 125000,
        "currency": "USD",
        "due_date": "2026-12-31",
    }
    same = await api.http.put(url, json=body, headers=api.headers)
    assert same.status_code == 200
    created = await events_of(api, "invoice.created", external_id=ids["invoice"])
    assert len(created) == 1 and created[0]["object"]["amount_cents"] == 125000
    assert created[0]["object"]["customer"]["external_id"] == ids["customer"]
    assert await events_of(api, "invoice.updated", external_id=ids["invoice"]) == []  # unchanged: no event

    changed = await api.http.put(url, json={**body, "amount_cents": 99000}, headers=api.headers)
    assert changed.status_code == 200 and changed.json()["balance_cents"] == 99000
    updated = await events_of(api, "invoice.updated", external_id=ids["invoice"])
    assert len(updated) == 1 and updated[0]["object"]["previous"]["amount_cents"] == 125000
    audit = await api.portal.pool.fetch(
        "SELECT event_type, actor FROM audit_events WHERE invoice_id = $1 ORDER BY id", ids["invoice_id"]
    )
    assert [a["event_type"] for a in audit] == ["INVOICE_CREATED", "INVOICE_UPDATED"]
    assert {a["actor"] for a in audit} == {f"api_key:{api.key_id}"}

    too_much = await api.http.put(url, json={**body, "amount_cents": 10_000_001}, headers=api.headers)
    assert too_much.status_code == 422 and too_much.json()["param"] == "amount_cents"
    zero = await api.http.put(url, json={**body, "amount_cents": 0}, headers=api.headers)
    assert zero.status_code == 422 and zero.json()["param"] == "amount_cents"
    text_amount = await api.http.put(url, json={**body, "amount_cents": "100"}, headers=api.headers)
    assert text_amount.status_code == 422 and text_amount.json()["param"] == "amount_cents"
    nobody = await api.http.put(
        url, json={**body, "customer_external_id": f"NOPE-{tag()}"}, headers=api.headers
    )
    assert nobody.status_code == 422 and nobody.json()["param"] == "customer_external_id"
    euro = await api.http.put(url, json={**body, "currency": "EUR"}, headers=api.headers)
    assert euro.status_code == 422 and euro.json()["param"] == "currency"

    # A debit processing: amount and customer are locked, the due date is not.
    invoice = InvoiceRef(ids["invoice_id"], ids["customer_id"], ids["payer_id"], ids["payer_id"], None, None)
    payment_id = await insert_accepted_payment(api.portal.pool, invoice)
    locked = await api.http.put(url, json={**body, "amount_cents": 5000}, headers=api.headers)
    assert locked.status_code == 409 and locked.json()["error"] == "InvoiceLocked", locked.text
    due = await api.http.put(
        url, json={**body, "amount_cents": 99000, "due_date": "2027-01-31"}, headers=api.headers
    )
    assert due.status_code == 200 and due.json()["due_date"] == "2027-01-31"
    pending_void = await api.http.post(url + "/void", headers=api.headers)
    assert pending_void.status_code == 409 and pending_void.json()["error"] == "InvoicePending"

    # Reads: the invoice with its payer and payment, payments never with a full account number.
    got = (await api.http.get(url, headers=api.headers)).json()
    assert got["status"] == "pending" and got["payer"]["id"] == ids["payer_id"]
    assert [p["payment_id"] for p in got["payments"]] == [payment_id]
    payment = await api.http.get(f"/api/v1/payments/{payment_id}", headers=api.headers)
    assert payment.status_code == 200 and payment.json()["account_last4"] == "6789"
    assert "000123456789" not in payment.text and "account_number" not in payment.text
    listed = await api.http.get(f"/api/v1/payments?invoice_external_id={ids['invoice']}", headers=api.headers)
    assert [p["payment_id"] for p in listed.json()["data"]] == [payment_id]
    assert (await api.http.get("/api/v1/payments/PAY-NOPE", headers=api.headers)).status_code == 404


async def test_void_cancels_the_attempt_and_links_answer_410(api: Api) -> None:
    ids = await customer_with_payer(api)
    portal = api.portal
    opened = await portal.open(ids["invoice_id"])
    link = portal.auth(ids["invoice_id"])
    r = await api.http.post(f"/api/v1/invoices/{ids['invoice']}/void", headers=api.headers)
    assert r.status_code == 200 and r.json()["status"] == "void", r.text
    assert "problems" not in r.json()

    r = await portal.http.post("/api/portal/sessions", headers=link)
    assert r.status_code == 410 and r.json()["reason"] == "invoice_void", r.text
    r = await portal.http.get(f"/api/portal/sessions/{opened['session_id']}", headers=link)
    assert r.status_code == 410
    page = await portal.http.get(f"/pay/{portal.token(ids['invoice_id'])}")
    assert page.status_code == 410 and "cancelled" in page.text
    # The attempt was cancelled, and no new attempt can start.
    # The workflow writes its cancellation after the answer: wait for it.
    await eventually(
        lambda: audit_row(portal.pool, ids["invoice_id"], "ATTEMPT_CANCELLED"), "the cancellation"
    )
    again = await api.http.post(f"/api/v1/invoices/{ids['invoice']}/void", headers=api.headers)
    assert again.status_code == 200
    assert len(await events_of(api, "invoice.voided", external_id=ids["invoice"])) == 1
    change = await api.http.put(
        f"/api/v1/invoices/{ids['invoice']}",
        json={
            "customer_external_id": ids["customer"],
            "number": "X-" + tag(),
            "kind": "invoice",
            "amount_cents": 1,
            "currency": "USD",
        },
        headers=api.headers,
    )
    assert change.status_code == 409 and change.json()["error"] == "InvoiceVoid"
    send = await api.http.post(
        f"/api/v1/invoices/{ids['invoice']}/payment-requests", json={}, headers=api.headers
    )
    assert send.status_code == 409
    voided = await portal.pool.fetchrow(
        "SELECT actor FROM audit_events WHERE invoice_id = $1 AND event_type = 'INVOICE_VOIDED'",
        ids["invoice_id"],
    )
    assert voided is not None and voided["actor"] == f"api_key:{api.key_id}"


async def test_an_api_contact_change_takes_the_console_path(api: Api) -> None:
    ids = await customer_with_payer(api)
    portal = api.portal
    await portal.open(ids["invoice_id"])
    old_link = portal.auth(ids["invoice_id"])
    new_email = f"new-{tag()}@example.com"
    r = await api.http.put(
        f"/api/v1/customers/{ids['customer']}/contacts/{ids['payer']}",
        json={"name": "Pat Payer", "email": new_email},
        headers=api.headers,
    )
    assert r.status_code == 200 and r.json()["email"] == new_email, r.text
    assert r.json()["phone"] == ids["payer_phone"]  # left out: unchanged

    r = await portal.http.post("/api/portal/sessions", headers=old_link)
    assert r.status_code == 401 and r.json()["reason"] == "link_revoked"
    await eventually(
        lambda: audit_row(portal.pool, ids["invoice_id"], "ATTEMPT_CANCELLED"), "the cancellation"
    )
    assert await outbox_messages(portal.pool, ids["payer_email"]) and await outbox_messages(
        portal.pool, new_email
    )
    changed = await portal.pool.fetchrow(
        "SELECT actor, details FROM audit_events WHERE customer_id = $1 AND event_type = 'CONTACT_CHANGED'"
        " ORDER BY id DESC LIMIT 1",
        ids["customer_id"],
    )
    assert changed["actor"] == f"api_key:{api.key_id}" and new_email not in changed["details"]
    updates = await events_of(api, "contact.updated", external_id=ids["payer"])
    assert updates and all(new_email not in e["raw"] and ids["payer_email"] not in e["raw"] for e in updates)
    assert all(ids["payer_phone"] not in e["raw"] for e in updates)

    # A second contact marked payer takes over; the old one is unmarked; payer.designated is written.
    second = f"CT-{tag()}"
    r = await api.http.put(
        f"/api/v1/customers/{ids['customer']}/contacts/{second}",
        json={"name": "Sam Second", "email": f"sam-{tag()}@example.com", "portal_payer": True},
        headers=api.headers,
    )
    assert r.status_code == 201 and r.json()["portal_payer"] is True
    payers = await portal.pool.fetch(
        "SELECT external_id FROM contacts WHERE customer_id = $1 AND portal_payer", ids["customer_id"]
    )
    assert [p["external_id"] for p in payers] == [second]
    designated = await events_of(api, "payer.designated", customer__external_id=ids["customer"])
    assert designated and designated[-1]["object"]["contact"]["id"] == r.json()["id"]
    unknown = await api.http.put(
        f"/api/v1/customers/NOPE-{tag()}/contacts/x", json={"name": "x"}, headers=api.headers
    )
    assert unknown.status_code == 404
    bad_email = await api.http.put(
        f"/api/v1/customers/{ids['customer']}/contacts/{second}",
        json={"name": "x", "email": "nope"},
        headers=api.headers,
    )
    assert bad_email.status_code == 422 and bad_email.json()["param"] == "email"


async def test_payment_request_sends_the_link_and_writes_an_event(api: Api) -> None:
    ids = await customer_with_payer(api)
    r = await api.http.post(
        f"/api/v1/invoices/{ids['invoice']}/payment-requests",
        json={"channels": ["email"]},
        headers=api.headers,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["pay_url"].split("/pay/")[1] and body["expires_at"]
    assert body["sent_to"]["channel"] == "email" and ids["payer_email"] not in r.text
    assert "•" in body["sent_to"]["destination"]
    sent = await outbox_messages(api.portal.pool, ids["payer_email"])
    assert any(body["pay_url"] in m["body"] for m in sent)
    events = await events_of(api, "payment_request.sent", invoice__external_id=ids["invoice"])
    assert len(events) == 1
    token = body["pay_url"].split("/pay/")[1]
    assert token not in events[0]["raw"] and ids["payer_email"] not in events[0]["raw"]
    audit = await api.portal.pool.fetchrow(
        "SELECT actor FROM audit_events WHERE invoice_id = $1 AND event_type = 'PAYMENT_REQUEST_SENT'",
        ids["invoice_id"],
    )
    assert audit["actor"] == f"api_key:{api.key_id}"


async def test_paging_over_250_invoices_and_their_events_visits_each_once(api_factory: ApiFactory) -> None:
    # 250 writes as fast as the machine goes: over the default 50 a second when it is idle.
    async with api_factory(api_rate_limit_per_second=100_000) as api:
        await _page_over_250(api)


async def _page_over_250(api: Api) -> None:
    before = await api.portal.pool.fetchval("SELECT id FROM events ORDER BY seq DESC LIMIT 1")
    ids = await customer_with_payer(api)
    made = {ids["invoice"]}
    for n in range(249):
        ext = f"{ids['invoice']}-{n}"
        r = await api.http.put(
            f"/api/v1/invoices/{ext}",
            json={
                "customer_external_id": ids["customer"],
                "number": f"N-{ext}",
                "kind": "invoice",
                "amount_cents": 100 + n,
                "currency": "USD",
            },
            headers=api.headers,
        )
        assert r.status_code == 201
        made.add(ext)

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = f"/api/v1/invoices?customer_external_id={ids['customer']}&limit=100"
        r = await api.http.get(query + (f"&starting_after={cursor}" if cursor else ""), headers=api.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [o["external_id"] for o in page["data"]]
        pages += 1
        if not page["has_more"]:
            break
        cursor = page["data"][-1]["id"]
    assert pages == 3 and len(seen) == 250 and set(seen) == made

    seen_events: list[str] = []
    cursor = None
    while True:
        query = "/api/v1/events?type=invoice.created&limit=37"
        start = cursor or before
        r = await api.http.get(query + (f"&starting_after={start}" if start else ""), headers=api.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        seen_events += [
            e["data"]["object"]["external_id"]
            for e in page["data"]
            if e["data"]["object"]["customer"]["external_id"] == ids["customer"]
        ]
        assert all(e["type"] == "invoice.created" for e in page["data"])
        if not page["has_more"]:
            break
        cursor = page["data"][-1]["id"]
    assert len(seen_events) == 250 and set(seen_events) == made
    one = await api.http.get(f"/api/v1/events/{page['data'][-1]['id']}", headers=api.headers)
    assert one.status_code == 200 and one.json() == page["data"][-1]
    assert (await api.http.get("/api/v1/events?limit=0", headers=api.headers)).json()["param"] == "limit"
    assert (await api.http.get("/api/v1/events?limit=101", headers=api.headers)).status_code == 422
    r = await api.http.get("/api/v1/events?starting_after=evt_nope", headers=api.headers)
    assert r.status_code == 422 and r.json()["param"] == "starting_after"


async def test_a_payment_request_retried_with_its_idempotency_key_sends_one_link(api: Api) -> None:
    ids = await customer_with_payer(api)
    url = f"/api/v1/invoices/{ids['invoice']}/payment-requests"
    headers = {**api.headers, "Idempotency-Key": f"send-{tag()}"}
    first = await api.http.post(url, json={"channels": ["email"]}, headers=headers)
    again = await api.http.post(url, json={"channels": ["email"]}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    links = [m for m in await outbox_messages(api.portal.pool, ids["payer_email"]) if "/pay/" in m["body"]]
    assert len(links) == 1 and first.json()["pay_url"] in links[0]["body"]
    assert len(await events_of(api, "payment_request.sent", invoice__external_id=ids["invoice"])) == 1


async def test_two_first_puts_of_one_customer_at_once_make_one_customer(api: Api) -> None:
    import asyncio

    ext = f"CUS-{tag()}"
    answers = await asyncio.gather(
        *(
            api.http.put(f"/api/v1/customers/{ext}", json={"name": "Acme"}, headers=api.headers)
            for _ in range(4)
        )
    )
    assert sorted(r.status_code for r in answers) == [200, 200, 200, 201]
    assert await api.portal.pool.fetchval("SELECT count(*) FROM customers WHERE external_id = $1", ext) == 1


async def test_the_console_path_writes_payer_designated_too(api: Api) -> None:
    ids = await customer_with_payer(api)
    other = f"CT-{tag()}"
    r = await api.http.put(
        f"/api/v1/customers/{ids['customer']}/contacts/{other}",
        json={"name": "Olly Other"},
        headers=api.headers,
    )
    assert r.status_code == 201 and r.json()["portal_payer"] is False
    before = len(await events_of(api, "payer.designated", customer__external_id=ids["customer"]))
    r = await api.http.put(
        f"/api/staff/customers/{ids['customer_id']}/portal-payer",
        json={"contact_id": r.json()["id"]},
        headers=api.portal.staff,
    )
    assert r.status_code == 200, r.text
    designated = await events_of(api, "payer.designated", customer__external_id=ids["customer"])
    assert len(designated) == before + 1
    assert designated[-1]["object"]["previous_contact"]["id"] == ids["payer_id"]


async def test_api_v1_is_in_the_openapi_document_with_the_key_scheme(api: Api) -> None:
    doc = (await api.http.get("/openapi.json")).json()
    for path in (
        "/api/v1/customers/{external_id}",
        "/api/v1/customers/{customer_external_id}/contacts/{external_id}",
        "/api/v1/invoices/{external_id}",
        "/api/v1/invoices/{external_id}/void",
        "/api/v1/invoices/{external_id}/payment-requests",
        "/api/v1/invoices",
        "/api/v1/payments/{payment_id}",
        "/api/v1/events",
        "/api/v1/events/{event_id}",
    ):
        assert path in doc["paths"], path
    assert "ApiKey" in doc["components"]["securitySchemes"]
    assert "param" in doc["components"]["schemas"]["ApiErrorBody"]["properties"]


async def test_changing_the_amount_cancels_the_running_attempt(api: Api) -> None:
    ids = await customer_with_payer(api)
    portal = api.portal
    opened = await portal.open(ids["invoice_id"])
    assert opened["invoice"]["amount_cents"] == 125000
    url = f"/api/v1/invoices/{ids['invoice']}"
    body = (await api.http.get(url, headers=api.headers)).json()
    r = await api.http.put(
        url,
        json={
            "customer_external_id": ids["customer"],
            "number": body["number"],
            "kind": "invoice",
            "amount_cents": 130000,
            "currency": "USD",
            "due_date": body["due_date"],
        },
        headers=api.headers,
    )
    assert r.status_code == 200 and "problems" not in r.json(), r.text
    await eventually(
        lambda: audit_row(portal.pool, ids["invoice_id"], "ATTEMPT_CANCELLED"), "the cancellation"
    )
    # The same link opens a new attempt for the new amount.
    reopened = await eventually(lambda: _open_when_closed(api, ids["invoice_id"]), "a new attempt")
    assert reopened["invoice"]["amount_cents"] == 130000 and reopened["session_id"] != opened["session_id"]


async def _open_when_closed(api: Api, invoice_id: str) -> dict[str, Any] | None:
    r = await api.portal.http.post("/api/portal/sessions", headers=api.portal.auth(invoice_id))
    if r.status_code != 200:
        return None
    body: dict[str, Any] = r.json()
    return body
