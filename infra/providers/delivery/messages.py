"""Every word PortalPay sends to a customer or to staff, in one place.

Each `compose_*` returns the one outbound type (`OutboundMessage`) its sender takes, whatever it
carries: a one-time code, a pay link, a payer-change notice, or a notice that a payment did not go
through. Codes come first in their message and name no login link; a pay link goes by email (by
text only when the payer has no email); a notice names who changed what and what to do.
"""

import html as html_lib

from domain.channels import Channel
from infra.providers.delivery.base import OutboundMessage


def compose_otp_message(
    *,
    channel: Channel,
    to: str,
    code: str,
    ttl_seconds: int,
    invoice_number: str,
    company_name: str,
    idempotency_key: str,
) -> OutboundMessage:
    minutes = max(1, ttl_seconds // 60)
    if channel is Channel.SMS:
        text = f"{code} is your {company_name} verification code for invoice {invoice_number}. Expires in {minutes} min."
        return OutboundMessage(channel, to, "", text, None, idempotency_key, {})
    subject = f"{code} is your verification code for invoice {invoice_number}"
    text = (
        f"{code}\n\nThis is your verification code to pay invoice {invoice_number} to {company_name}.\n"
        f"It expires in {minutes} minutes and can be used once.\n"
        "If you did not ask for it, you can ignore this message."
    )
    esc = html_lib.escape
    html = (
        f'<p style="font-size:28px;letter-spacing:4px"><strong>{esc(code)}</strong></p>'
        f"<p>This is your verification code to pay invoice {esc(invoice_number)} to {esc(company_name)}.</p>"
        f"<p>It expires in {minutes} minutes and can be used once.</p>"
        "<p>If you did not ask for it, you can ignore this message.</p>"
    )
    data = {
        "code": code,
        "expires_minutes": str(minutes),
        "invoice_number": invoice_number,
        "company_name": company_name,
    }
    return OutboundMessage(channel, to, subject, text, html, idempotency_key, data)


def compose_pay_link_message(
    channel: Channel, to: str, *, url: str, invoice_number: str, amount: str, company: str, key: str
) -> OutboundMessage:
    """The Pay Your Invoice link staff send (SPEC §4): the invoice, the amount, the link, the code to come."""
    if channel is Channel.SMS:
        text = f"{company}: invoice {invoice_number} for {amount} is ready. Pay securely: {url}"
        return OutboundMessage(channel, to, "", text, None, key, {})
    subject = f"Pay your invoice {invoice_number} ({amount})"
    text = (
        f"Invoice {invoice_number} from {company} for {amount} is ready.\n\n"
        f"Pay Your Invoice: {url}\n\n"
        "Before paying by E-Check or ACH we will send a one-time code to this contact to verify it is you."
    )
    return OutboundMessage(
        channel, to, subject, text, None, key, {"url": url, "invoice_number": invoice_number}
    )


# --- payer-change notices (SPEC §11) -----------------------------------------------------------------


def no_longer_payer_line(customer_name: str) -> str:
    return f"You are no longer the Customer Portal Payer for {customer_name}."


def now_payer_line(customer_name: str) -> str:
    return (
        f"You are now the Customer Portal Payer for {customer_name}: payment links and "
        "verification codes will come to you."
    )


def old_address_line(field: str, customer_name: str) -> str:
    """`field` is "email" or "phone": the value that no longer verifies payments."""
    return f"This {_noun(field)} is no longer used to verify payments for {customer_name}."


def new_address_line(field: str, customer_name: str) -> str:
    return f"This {_noun(field)} will now receive verification codes for {customer_name}'s payments."


def _noun(field: str) -> str:
    return "address" if field == "email" else "number"


def compose_contact_change_notice(
    channel: Channel, to: str, *, first_line: str, company: str, customer_name: str, key: str
) -> OutboundMessage:
    """One notice to one old or new address: what changed for it, then who changed it and what now."""
    tail = (
        f"The change was made by {company} staff. Payment links sent earlier no longer work; ask for a "
        f"new one if you need to pay. If you did not expect this, contact {company}."
    )
    text = f"{company}: {first_line} {tail}"
    subject = "" if channel is Channel.SMS else f"Payment contact changed for {customer_name}"
    return OutboundMessage(channel, to, subject, text, None, key, {})


# --- a payment that did not go through (SPEC §9) ---------------------------------------------------


def compose_payment_failed_staff_notice(
    to: str,
    *,
    payment_id: str,
    amount: str,
    invoice_number: str,
    account_last4: str,
    failed: bool,
    return_code: str,
    meaning: str,
    unauthorized: bool,
    key: str,
) -> OutboundMessage:
    """To STAFF_NOTIFY_EMAIL: which payment, the return code and its meaning, and an unauthorized flag."""
    what = _what_happened(failed)
    flag = " FLAGGED: the account holder says the debit was not authorized." if unauthorized else ""
    subject = f"Payment {what}: invoice {invoice_number} ({return_code})"
    text = (
        f"Payment {payment_id} of {amount} for invoice {invoice_number} (account ending {account_last4})"
        f" {what}: {return_code} {meaning}. The invoice is open again.{flag}"
    )
    return OutboundMessage(Channel.EMAIL, to, subject, text, None, key)


def compose_payment_failed_payer_notice(
    channel: Channel,
    to: str,
    *,
    payer_name: str,
    amount: str,
    invoice_number: str,
    meaning: str,
    pay_again_url: str | None,
    key: str,
) -> OutboundMessage:
    """To the payer: the payment did not go through, why, and a new link (none when unauthorized)."""
    if pay_again_url is None:
        follow_up = "Please contact us about this invoice."
    else:
        follow_up = f"You can pay again here: {pay_again_url}"
    text = (
        f"Hello {payer_name}, your payment of {amount} for invoice {invoice_number} did not go through"
        f" ({meaning}). {follow_up}"
    )
    subject = (
        "" if channel is Channel.SMS else f"Your payment for invoice {invoice_number} did not go through"
    )
    return OutboundMessage(channel, to, subject, text, None, key)


def compose_settlement_overdue_staff_notice(
    to: str, *, payment_id: str, invoice_number: str, expected: str, polls: int, key: str
) -> OutboundMessage:
    """To STAFF_NOTIFY_EMAIL, once: a debit still without an outcome well after its expected date."""
    subject = f"Payment overdue: invoice {invoice_number} has no outcome"
    text = (
        f"Payment {payment_id} for invoice {invoice_number} was expected to settle on {expected}; the"
        f" processor has given no outcome after {polls} check(s). It is still followed;"
        " see `portalpay ops stuck`."
    )
    return OutboundMessage(Channel.EMAIL, to, subject, text, None, key)


def _what_happened(failed: bool) -> str:
    return "failed" if failed else "was returned"
