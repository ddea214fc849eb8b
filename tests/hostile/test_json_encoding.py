"""Found by the campaign's poison-bank-details attack: a UTF-16 JSON body was a payment (200, PAID).

Python's JSON parser detects UTF-16 and UTF-32 and takes them; RFC 8259 §8.1 says JSON between
systems is UTF-8, and a filter in front of the portal that reads UTF-8 would not see what the app
acts on. Such a body is a 400 before any route runs: nothing reaches history or the processor.
"""

import json

import pytest

from tests.hostile.helpers import (
    UPDATE_OR_ACTIVITY,
    bank,
    history_event_types,
    money_rows,
    session_path,
    unique_phone,
)
from tests.portal.conftest import Portal
from tests.support import create_invoice


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
async def test_a_json_body_that_is_not_utf8_is_400_and_never_a_payment(portal: Portal, encoding: str) -> None:
    inv = await create_invoice(portal.pool, kind="deposit", amount_cents=20000, phone=unique_phone())
    auth = portal.auth(inv.invoice_id)
    sid = (await portal.open(inv.invoice_id))["session_id"]
    events_before = await history_event_types(portal.harness.client, inv.invoice_id)
    money_before = await money_rows(portal.pool, inv.invoice_id)

    r = await portal.http.post(
        session_path(sid, "/payment"),
        content=json.dumps(bank()).encode(encoding),
        headers={**auth, "Content-Type": "application/json"},
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "MalformedBody"
    after = await history_event_types(portal.harness.client, inv.invoice_id)
    assert [e for e in after if e in UPDATE_OR_ACTIVITY] == [
        e for e in events_before if e in UPDATE_OR_ACTIVITY
    ]
    assert await money_rows(portal.pool, inv.invoice_id) == money_before

    # The same details in UTF-8 (a BOM-less body, as every browser sends) still pay, once.
    r = await portal.http.post(session_path(sid, "/payment"), json=bank(), headers=auth)
    assert r.status_code == 200 and r.json()["status"] == "PAID", r.text


async def test_a_staff_json_body_that_is_not_utf8_is_400(portal: Portal) -> None:
    inv = await create_invoice(portal.pool, phone=unique_phone())
    r = await portal.http.patch(
        f"/api/staff/contacts/{inv.payer_contact_id}",
        content=json.dumps({"email": "new@example.com"}).encode("utf-16"),
        headers={**portal.staff, "Content-Type": "application/json"},
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "MalformedBody"
