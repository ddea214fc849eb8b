"""What the console shows of money: payments on the invoice page and on /staff/attention."""

from tests.console.support import console_client, make_staff, signed_in
from tests.portal.conftest import Portal, clone_demo_customer
from tests.support import GOOD_ROUTING


async def test_a_declined_payment_shows_on_the_invoice_and_needs_attention(portal: Portal) -> None:
    demo = await clone_demo_customer(portal.pool, "C-1001")
    deposit = demo.invoices["DEP-1001"]  # no OTP for deposits: straight to bank details
    opened = await portal.open(deposit)
    r = await portal.http.post(
        f"/api/portal/sessions/{opened['session_id']}/payment",
        headers=portal.auth(deposit),
        json={
            "method": "ach",
            "account_holder": "Ada Lovelace",
            "routing_number": GOOD_ROUTING,
            "account_number": "000111111113",  # the sandbox declines it: account_closed
            "account_type": "checking",
        },
    )
    assert r.status_code == 200 and r.json()["status"] == "DECLINED", r.text
    payment_id = await portal.pool.fetchval("SELECT id FROM payments WHERE invoice_id = $1", deposit)
    assert payment_id is not None
    creds = await make_staff(portal.pool)
    async with console_client(portal.app) as http:
        await signed_in(http, creds)
        page = await http.get(f"/staff/invoices/{deposit}")
        assert page.status_code == 200
        assert payment_id in page.text and "account_closed" in page.text and "<td>1113</td>" in page.text
        assert "000111111113" not in page.text  # last 4 only
        attention = await http.get("/staff/attention")
        assert attention.status_code == 200
        row = attention.text[attention.text.index(payment_id) - 400 : attention.text.index(payment_id) + 400]
        assert deposit in row and "account_closed" in row
        assert "Blocked bank accounts" in attention.text and "Stuck attempts" in attention.text
