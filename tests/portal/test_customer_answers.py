"""The customer API answers as it did when it second-guessed the gateway (issue 19).

The routes now take the gateway's answer as it is: a finished run is a 409 naming the state it
ended in, a cancel answers once the run has ended, an invoice whose payer has no contact method
opens as a NO_CONTACT_METHOD state every time, and every view of the attempt is the same one
(`starters.portal.customer.session_view`). These pass on the code before and after the change.
"""

import uuid
from typing import Any

from tests.portal.conftest import Portal
from tests.support import GOOD_ACCOUNT, GOOD_ROUTING, create_invoice


def _path(session_id: str, suffix: str = "") -> str:
    return f"/api/portal/sessions/{session_id}{suffix}"


def _bank() -> dict[str, Any]:
    return {
        "method": "echeck",
        "account_holder": "Charles Babbage",
        "routing_number": GOOD_ROUTING,
        "account_number": GOOD_ACCOUNT,
        "account_type": "checking",
    }


def _without_clock(view: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in view.items() if key != "server_time"}


async def test_every_action_on_a_cancelled_run_is_409_naming_cancelled(portal: Portal) -> None:
    inv = await create_invoice(portal.pool)
    auth = portal.auth(inv.invoice_id)
    sid = (await portal.open(inv.invoice_id))["session_id"]
    cancelled = await portal.http.post(_path(sid, "/cancel"), headers=auth)
    # The answer is where the run ended, not a state on the way there.
    assert cancelled.status_code == 200 and cancelled.json() == {"session_id": sid, "status": "CANCELLED"}
    for suffix, body in (
        ("/code", {"channel": "sms"}),
        ("/verify", {"code": "123456"}),
        ("/payment", _bank()),
    ):
        r = await portal.http.post(_path(sid, suffix), json=body, headers=auth)
        assert r.status_code == 409, (suffix, r.text)
        answer = r.json()
        assert answer["error"] == "InvalidState" and answer["status"] == "CANCELLED", (suffix, answer)
        assert "CANCELLED" in answer["message"], (suffix, answer)
    shown = (await portal.http.get(_path(sid), headers=auth)).json()
    assert shown["status"] == "CANCELLED" and shown["session_id"] == sid


async def test_actions_on_a_run_that_never_existed_are_404(portal: Portal) -> None:
    inv = await create_invoice(portal.pool)
    auth = portal.auth(inv.invoice_id)
    await portal.open(inv.invoice_id)
    sid = f"{inv.invoice_id}~{uuid.uuid4()}"
    for suffix, body in (
        ("/code", {"channel": "sms"}),
        ("/verify", {"code": "123456"}),
        ("/payment", _bank()),
    ):
        r = await portal.http.post(_path(sid, suffix), json=body, headers=auth)
        assert r.status_code == 404 and r.json()["error"] == "SessionNotFound", (suffix, r.text)


async def test_no_contact_method_opens_as_a_state_each_time(portal: Portal) -> None:
    inv = await create_invoice(portal.pool, email=None, phone=None)
    first = await portal.open(inv.invoice_id)
    again = await portal.open(inv.invoice_id)  # the first run ended; the answer is the same state
    for opened in (first, again):
        assert opened["status"] == "NO_CONTACT_METHOD" and opened["channels"] == [], opened
        assert "contact" in (opened["reason"] or "").lower()
        assert opened["payer"] is not None and opened["invoice"]["number"] == inv.invoice_id


async def test_open_join_and_reload_show_the_same_view(portal: Portal) -> None:
    inv = await create_invoice(portal.pool)
    auth = portal.auth(inv.invoice_id)
    opened = await portal.open(inv.invoice_id)
    joined = await portal.open(inv.invoice_id)  # a second tab joins the running attempt
    reloaded = (await portal.http.get(_path(opened["session_id"]), headers=auth)).json()
    assert _without_clock(opened) == _without_clock(joined) == _without_clock(reloaded)
    assert opened["status"] == "CHOOSING_CHANNEL" and opened["server_time"]
    assert "{account_last4}" in opened["authorization_text"]
