"""The words of every outbound message, from the one module that holds them (issue 19).

Pure: each `compose_*` is called as its sender calls it, and the message it returns is read.
"""

from domain.channels import Channel
from infra.providers.delivery.base import OutboundMessage
from infra.providers.delivery.messages import (
    compose_contact_change_notice,
    compose_otp_message,
    compose_pay_link_message,
    compose_payment_failed_payer_notice,
    compose_payment_failed_staff_notice,
    new_address_line,
    no_longer_payer_line,
    now_payer_line,
    old_address_line,
)


def test_a_code_comes_first_and_sms_has_no_subject() -> None:
    sms = compose_otp_message(
        channel=Channel.SMS,
        to="+15555550101",
        code="246801",
        ttl_seconds=600,
        invoice_number="INV-1",
        company_name="Acme",
        idempotency_key="k",
    )
    email = compose_otp_message(
        channel=Channel.EMAIL,
        to="a@example.com",
        code="246801",
        ttl_seconds=90,
        invoice_number="INV-1",
        company_name="Acme <&>",
        idempotency_key="k",
    )
    assert isinstance(sms, OutboundMessage) and sms.subject == "" and sms.text.startswith("246801 ")
    assert "10 min" in sms.text
    assert email.subject.startswith("246801") and email.text.startswith("246801")
    assert "1 minutes" in email.text and email.template_data["expires_minutes"] == "1"
    assert email.html is not None and "Acme &lt;&amp;&gt;" in email.html and "<&>" not in email.html


def test_a_pay_link_names_invoice_amount_and_link() -> None:
    email = compose_pay_link_message(
        Channel.EMAIL,
        "a@example.com",
        url="https://p/pay/t",
        invoice_number="INV-2",
        amount="$5.00",
        company="Acme",
        key="k2",
    )
    sms = compose_pay_link_message(
        Channel.SMS,
        "+15555550101",
        url="https://p/pay/t",
        invoice_number="INV-2",
        amount="$5.00",
        company="Acme",
        key="k2",
    )
    assert email.subject == "Pay your invoice INV-2 ($5.00)" and "https://p/pay/t" in email.text
    assert email.template_data == {"url": "https://p/pay/t", "invoice_number": "INV-2"}
    assert (
        sms.subject == ""
        and sms.text.startswith("Acme: invoice INV-2 for $5.00")
        and sms.idempotency_key == "k2"
    )


def test_a_change_notice_says_what_changed_and_who_changed_it() -> None:
    lines = [
        no_longer_payer_line("Babbage Ltd"),
        now_payer_line("Babbage Ltd"),
        old_address_line("email", "Babbage Ltd"),
        new_address_line("phone", "Babbage Ltd"),
    ]
    assert "no longer the Customer Portal Payer" in lines[0] and "now the Customer Portal Payer" in lines[1]
    assert lines[2].startswith("This address") and lines[3].startswith("This number")
    email = compose_contact_change_notice(
        Channel.EMAIL,
        "a@example.com",
        first_line=lines[0],
        company="Acme",
        customer_name="Babbage Ltd",
        key="n",
    )
    sms = compose_contact_change_notice(
        Channel.SMS, "+15555550101", first_line=lines[1], company="Acme", customer_name="Babbage Ltd", key="n"
    )
    assert email.subject == "Payment contact changed for Babbage Ltd" and sms.subject == ""
    assert email.text.startswith(f"Acme: {lines[0]} The change was made by Acme staff.")
    assert "Payment links sent earlier no longer work" in sms.text


def test_a_failed_payment_tells_staff_the_code_and_the_payer_what_to_do() -> None:
    staff = compose_payment_failed_staff_notice(
        "ops@example.com",
        payment_id="pay_1",
        amount="$12.50",
        invoice_number="INV-3",
        account_last4="6789",
        failed=False,
        return_code="R10",
        meaning="Customer advises not authorized",
        unauthorized=True,
        key="s",
    )
    assert staff.channel is Channel.EMAIL and staff.subject == "Payment was returned: invoice INV-3 (R10)"
    assert "account ending 6789" in staff.text and staff.text.endswith("not authorized.")
    assert "FLAGGED" in staff.text
    failed = compose_payment_failed_staff_notice(
        "ops@example.com",
        payment_id="pay_1",
        amount="$12.50",
        invoice_number="INV-3",
        account_last4="6789",
        failed=True,
        return_code="R01",
        meaning="Insufficient funds",
        unauthorized=False,
        key="s",
    )
    assert failed.subject.startswith("Payment failed:") and "FLAGGED" not in failed.text
    again = compose_payment_failed_payer_notice(
        Channel.SMS,
        "+15555550101",
        payer_name="Ada",
        amount="$12.50",
        invoice_number="INV-3",
        meaning="Insufficient funds",
        pay_again_url="https://p/pay/new",
        key="p",
    )
    assert again.subject == "" and "did not go through (Insufficient funds)" in again.text
    assert again.text.endswith("You can pay again here: https://p/pay/new")
    contact_us = compose_payment_failed_payer_notice(
        Channel.EMAIL,
        "a@example.com",
        payer_name="Ada",
        amount="$12.50",
        invoice_number="INV-3",
        meaning="Customer advises not authorized",
        pay_again_url=None,
        key="p",
    )
    assert contact_us.subject == "Your payment for invoice INV-3 did not go through"
    assert (
        contact_us.text.endswith("Please contact us about this invoice.") and "/pay/" not in contact_us.text
    )
