"""Issue 10 findings 1 and 7, tried again exactly: hostile bank details and codes never reach money.

Each hostile body is refused with 422 by the portal, and the attempt's history, the payments table
and the processor's ledger are exactly as they were before it was sent.
"""

from typing import Any

import pytest

from tests.hostile.helpers import (
    ARABIC_INDIC_CODE,
    FULLWIDTH_ACCOUNT,
    UPDATE_OR_ACTIVITY,
    bank,
    history_event_types,
    money_rows,
    session_path,
    unique_email,
    unique_phone,
)
from tests.portal.conftest import Portal
from tests.support import create_invoice, latest_code

HOSTILE_BANK_DETAILS: list[tuple[str, dict[str, Any]]] = [
    ("fullwidth account (finding 1)", bank(account_number=FULLWIDTH_ACCOUNT)),
    ("NUL in account_holder (finding 1)", bank(account_holder="Charles\x00Babbage")),
    ("Arabic-Indic account", bank(account_number="٠٠٠١٢٣٤٥٦٧٨٩")),
    ("fullwidth routing passing the checksum as int()", bank(routing_number="０１１００００１５")),  # noqa: RUF001
    ("control character in account_holder", bank(account_holder="Charles\x1bBabbage")),
    ("right-to-left override in account_holder", bank(account_holder="Charles\u202eeggabbaB")),
    ("line separator in account_holder", bank(account_holder="Charles\u2028Babbage")),
    ("account number of 18 digits", bank(account_number="1" * 18)),
    ("account number of 3 digits", bank(account_number="123")),
    ("account number with a sign", bank(account_number="+000123456")),
    ("account number as a JSON number", bank(account_number=123456789)),
    ("unknown field", bank(memo="hi")),
    ("unknown field naming a destination", bank(email="attacker@example.net")),
    ("account type outside the set", bank(account_type="checking\x00")),
]


async def test_hostile_bank_details_on_a_deposit_link_never_reach_the_processor(portal: Portal) -> None:
    # A deposit needs no code, so the payment form is one POST away for whoever holds the link.
    inv = await create_invoice(portal.pool, kind="deposit", amount_cents=20000, phone=unique_phone())
    auth = portal.auth(inv.invoice_id)
    opened = await portal.open(inv.invoice_id)
    sid = opened["session_id"]
    assert opened["status"] == "AWAITING_PAYMENT", opened

    events_before = await history_event_types(portal.harness.client, inv.invoice_id)
    money_before = await money_rows(portal.pool, inv.invoice_id)
    for label, body in HOSTILE_BANK_DETAILS:
        r = await portal.http.post(session_path(sid, "/payment"), json=body, headers=auth)
        assert r.status_code == 422, (label, r.status_code, r.text)
        assert r.json()["error"] == "InvalidInput", label
        assert FULLWIDTH_ACCOUNT not in r.text and "Babbage" not in r.text, label  # nothing echoed
    events_after = await history_event_types(portal.harness.client, inv.invoice_id)
    assert [e for e in events_after if e in UPDATE_OR_ACTIVITY] == [
        e for e in events_before if e in UPDATE_OR_ACTIVITY
    ]
    assert await money_rows(portal.pool, inv.invoice_id) == money_before == (0, money_before[1])

    # The attempt is untouched: a well-formed payment still goes through, once.
    r = await portal.http.post(session_path(sid, "/payment"), json=bank(), headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "PAID"
    payments, ledger = await money_rows(portal.pool, inv.invoice_id)
    assert (payments, ledger) == (1, money_before[1] + 1)


@pytest.mark.parametrize(
    "code",
    [
        ARABIC_INDIC_CODE,  # finding 7: answered 200 and counted as a guess
        "１２３４５６",  # noqa: RUF001 - fullwidth
        "12345\x00",
        "\x00123456",
        "123456\n",
        "12345",
        "1234567",
        "12 34 567",
    ],
)
async def test_a_code_that_is_not_six_ascii_digits_is_422_and_not_a_guess(portal: Portal, code: str) -> None:
    phone = unique_phone()
    inv = await create_invoice(portal.pool, phone=phone, email=unique_email())
    auth = portal.auth(inv.invoice_id)
    sid = (await portal.open(inv.invoice_id))["session_id"]
    r = await portal.http.post(session_path(sid, "/code"), json={"channel": "sms"}, headers=auth)
    assert r.status_code == 200, r.text
    events_before = await history_event_types(portal.harness.client, inv.invoice_id)

    r = await portal.http.post(session_path(sid, "/verify"), json={"code": code}, headers=auth)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "InvalidInput"

    assert await history_event_types(portal.harness.client, inv.invoice_id) == events_before
    state = (await portal.http.get(session_path(sid), headers=auth)).json()
    assert state["attempts_remaining"] == 5 and state["status"] == "AWAITING_CODE"
    # The real code, typed the way people type it, still verifies.
    real = await latest_code(portal.pool, phone)
    r = await portal.http.post(
        session_path(sid, "/verify"), json={"code": f" {real[:3]}-{real[3:]} "}, headers=auth
    )
    assert r.status_code == 200 and r.json()["verified"] is True, r.text


@pytest.mark.parametrize(
    ("suffix", "body"),
    [
        ("/code", {"channel": "sms", "to": "+15550009999"}),
        ("/verify", {"code": "123456", "channel": "sms"}),
        ("/code", {"channel": "sms\x00"}),
    ],
)
async def test_unknown_or_poisoned_fields_in_customer_requests_are_422(
    portal: Portal, suffix: str, body: dict[str, Any]
) -> None:
    inv = await create_invoice(portal.pool, phone=unique_phone(), email=unique_email())
    auth = portal.auth(inv.invoice_id)
    sid = (await portal.open(inv.invoice_id))["session_id"]
    events_before = await history_event_types(portal.harness.client, inv.invoice_id)
    r = await portal.http.post(session_path(sid, suffix), json=body, headers=auth)
    assert r.status_code == 422, r.text
    assert await history_event_types(portal.harness.client, inv.invoice_id) == events_before
