"""The words of an OTP message: the code first, its expiry, the invoice, the company; no login link."""

import html as html_lib

from domain.channels import Channel
from infra.providers.delivery.base import OtpMessage


def compose_otp_message(
    *,
    channel: Channel,
    to: str,
    code: str,
    ttl_seconds: int,
    invoice_number: str,
    company_name: str,
    idempotency_key: str,
) -> OtpMessage:
    minutes = max(1, ttl_seconds // 60)
    if channel is Channel.SMS:
        text = f"{code} is your {company_name} verification code for invoice {invoice_number}. Expires in {minutes} min."
        return OtpMessage(channel, to, "", text, None, idempotency_key, {})
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
    return OtpMessage(channel, to, subject, text, html, idempotency_key, data)
