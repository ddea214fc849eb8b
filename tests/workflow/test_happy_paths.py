"""Whole attempts on the real dev server and PostgreSQL: paid by OTP, deposits, no contact method."""

from domain.attempt import (
    ClientContext,
    PaymentDetails,
    RequestCodeInput,
    SubmitPaymentInput,
    VerifyCodeInput,
)
from domain.channels import Channel
from domain.policy import PaymentMethod
from domain.status import PaymentStatus
from infra.stores.audit_trail import chain_ok, fetch_trail
from tests.support import GOOD_ACCOUNT, GOOD_ROUTING, Harness, create_invoice, latest_code
from workflows.pay_invoice import PayInvoiceWorkflow

BROWSER = ClientContext(ip="203.0.113.7", user_agent="pytest-browser")


def details(account: str = GOOD_ACCOUNT, method: PaymentMethod = PaymentMethod.ECHECK) -> PaymentDetails:
    return PaymentDetails(
        method=method,
        account_holder="Charles Babbage",
        routing_number=GOOD_ROUTING,
        account_number=account,
        account_type="checking",
    )


async def test_invoice_paid_after_otp_sent_to_designated_payer(harness: Harness) -> None:
    inv = await create_invoice(harness.pool)
    gw = harness.gateway

    opened = await gw.open(inv.invoice_id, BROWSER)
    assert opened.status is PaymentStatus.CHOOSING_CHANNEL
    assert opened.payer_contact_id == inv.payer_contact_id
    assert opened.payer_name == "Designated Payer"
    assert {c.channel for c in opened.channels} == {Channel.EMAIL, Channel.SMS}
    assert all("•" in c.destination for c in opened.channels)
    assert opened.otp_required is True

    sent = await gw.request_code(
        inv.invoice_id, opened.run_id, RequestCodeInput(channel=Channel.SMS, client=BROWSER)
    )
    assert sent.status is PaymentStatus.AWAITING_CODE
    assert sent.destination == "•••-•••-0199"
    code = await latest_code(harness.pool, inv.phone or "")

    verified = await gw.verify_code(inv.invoice_id, opened.run_id, VerifyCodeInput(code=code, client=BROWSER))
    assert verified.verified and verified.status is PaymentStatus.AWAITING_PAYMENT

    paid = await gw.submit_payment(
        inv.invoice_id, opened.run_id, SubmitPaymentInput(details=details(), client=BROWSER)
    )
    assert paid.status is PaymentStatus.PAID
    assert paid.payment.account_last4 == "6789"
    assert paid.payment.accepted

    outcome = await harness.client.get_workflow_handle_for(
        PayInvoiceWorkflow.run, opened.workflow_id, run_id=opened.run_id
    ).result()
    assert outcome.status is PaymentStatus.PAID and outcome.payment is not None

    trail = await fetch_trail(harness.pool, inv.invoice_id)
    types = [row["event_type"] for row in trail]
    assert types == [
        "ATTEMPT_STARTED",
        "PAYER_RESOLVED",
        "OTP_SENT",
        "OTP_VERIFIED",
        "ACCOUNT_VALIDATED",  # SPEC §9: first debit from this account
        "PAYMENT_SUBMITTED",
        "PAYMENT_ACCEPTED",
    ]
    assert {row["payer_contact_id"] for row in trail} == {inv.payer_contact_id}
    assert trail[2]["destination"] == "•••-•••-0199" and trail[2]["ip"] == "203.0.113.7"
    assert await chain_ok(harness.pool, inv.invoice_id, key=harness.settings.audit_key())

    payment = await harness.pool.fetchrow("SELECT * FROM payments WHERE invoice_id = $1", inv.invoice_id)
    assert payment["account_last4"] == "6789"
    assert payment["otp_audit_event_id"] == trail[3]["id"]
    assert payment["ip"] == "203.0.113.7" and payment["user_agent"] == "pytest-browser"
    assert "6789" in payment["authorization_text"]
    invoice = await harness.pool.fetchrow(
        "SELECT status, balance_cents FROM invoices WHERE id = $1", inv.invoice_id
    )
    # SPEC §9: accepted is not settled; the invoice is pending with the debit's amount held.
    assert (invoice["status"], invoice["balance_cents"]) == ("pending", 0)


async def test_deposit_skips_otp(harness: Harness) -> None:
    inv = await create_invoice(harness.pool, kind="deposit", amount_cents=20000)
    opened = await harness.gateway.open(inv.invoice_id, BROWSER)
    assert opened.status is PaymentStatus.AWAITING_PAYMENT
    assert opened.otp_required is False
    paid = await harness.gateway.submit_payment(
        inv.invoice_id, opened.run_id, SubmitPaymentInput(details=details(), client=BROWSER)
    )
    assert paid.status is PaymentStatus.PAID
    types = [row["event_type"] for row in await fetch_trail(harness.pool, inv.invoice_id)]
    assert "OTP_NOT_REQUIRED" in types and "OTP_SENT" not in types


async def test_no_contact_method_ends_the_attempt(harness: Harness) -> None:
    inv = await create_invoice(harness.pool, email=None, phone=None)
    opened = await harness.gateway.open(inv.invoice_id, BROWSER)
    assert opened.status is PaymentStatus.NO_CONTACT_METHOD
    assert opened.channels == []
    assert opened.reason and "profile" in opened.reason
