"""Whole attempts with the real SDK senders against the stand-ins (dev server, PostgreSQL, a worker).

- Twilio refuses the number (21211): the attempt marks SMS failed, audits OTP_DELIVERY_FAILED with
  the provider's code, offers email, and the payment completes with a code sent through SendGrid.
- A transient Twilio fault (500) is retried by the activity's retry policy: one more POST, one code.
- A signed `undelivered` status callback reaches the attempt as a signal: SMS is marked failed.
Every captured request is validated against the providers' documents.
"""

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from openapi_core import OpenAPI
from twilio.request_validator import RequestValidator

from domain.attempt import (
    ClientContext,
    DeliveryStatusEvent,
    PaymentDetails,
    RequestCodeInput,
    SubmitPaymentInput,
    VerifyCodeInput,
)
from domain.channels import Channel
from domain.errors import RefusalType
from domain.policy import PaymentMethod
from domain.status import PaymentStatus
from infra.providers.delivery.base import CodeSender
from infra.providers.delivery.sendgrid_email import SendGridEmailSender
from infra.providers.delivery.twilio_sms import TwilioSmsSender
from infra.stores.audit_trail import fetch_trail
from starters.portal.webhooks.twilio import STATUS_PATH, twilio_status_router
from starters.workflow_client import AttemptRefused
from tests.conftest import HarnessFactory
from tests.lifecycle.services import wait_for
from tests.support import GOOD_ACCOUNT, GOOD_ROUTING, Harness, create_invoice
from tools.standins.providers import Reply, SendGridStandIn, TwilioStandIn, twilio_error
from workflows.pay_invoice import PayInvoiceWorkflow

from .contracts import validate_sendgrid, validate_twilio

BROWSER = ClientContext(ip="203.0.113.8", user_agent="pytest-providers")
ACCOUNT_SID = "AC" + "d" * 32
AUTH_TOKEN = "attempt-test-token"
CALLBACK = "https://portal.example.com/webhooks/twilio/status"
CODE_RE = re.compile(r"\b(\d{6})\b")


@pytest.fixture
async def provider_harness(
    harness_factory: HarnessFactory, sendgrid_standin: SendGridStandIn, twilio_standin: TwilioStandIn
) -> AsyncIterator[Harness]:
    senders: dict[Channel, CodeSender] = {
        Channel.EMAIL: SendGridEmailSender(
            api_key="SG.attempt",
            from_email="PortalPay <codes@portalpay.test>",
            host=sendgrid_standin.url,
            timeout=2,
        ),
        Channel.SMS: TwilioSmsSender(
            account_sid=ACCOUNT_SID,
            auth_token=AUTH_TOKEN,
            from_number="+15005550006",
            status_callback_url=CALLBACK,
            base_url=twilio_standin.url,
            timeout=2,
        ),
    }
    async with harness_factory(senders=senders, twilio_auth_token=AUTH_TOKEN) as h:
        yield h
    for sender in senders.values():
        await sender.aclose()


def pay_details() -> PaymentDetails:
    return PaymentDetails(
        method=PaymentMethod.ECHECK,
        account_holder="Designated Payer",
        routing_number=GOOD_ROUTING,
        account_number=GOOD_ACCOUNT,
        account_type="checking",
    )


async def test_sms_refused_then_paid_through_email(
    provider_harness: Harness,
    sendgrid_standin: SendGridStandIn,
    twilio_standin: TwilioStandIn,
    sendgrid_contract: OpenAPI,
    twilio_contract: OpenAPI,
) -> None:
    h, gw = provider_harness, provider_harness.gateway
    inv = await create_invoice(h.pool)
    twilio_standin.script(
        Reply.json(400, twilio_error(21211, f"Invalid 'To' Phone Number: {inv.phone}", 400))
    )

    opened = await gw.open(inv.invoice_id, BROWSER)
    with pytest.raises(AttemptRefused) as refused:
        await gw.request_code(
            inv.invoice_id, opened.run_id, RequestCodeInput(channel=Channel.SMS, client=BROWSER)
        )
    assert refused.value.type is RefusalType.DELIVERY_FAILED
    assert len(twilio_standin.requests) == 1  # permanent: never retried
    validate_twilio(twilio_contract, twilio_standin.requests[0])

    state = await gw.state(inv.invoice_id, opened.run_id)
    assert state.failed_channels == [Channel.SMS]
    assert state.status is PaymentStatus.CHOOSING_CHANNEL
    with pytest.raises(AttemptRefused) as again:
        await gw.request_code(
            inv.invoice_id, opened.run_id, RequestCodeInput(channel=Channel.SMS, client=BROWSER)
        )
    assert again.value.type is RefusalType.CHANNEL_UNAVAILABLE

    sent = await gw.request_code(
        inv.invoice_id, opened.run_id, RequestCodeInput(channel=Channel.EMAIL, client=BROWSER)
    )
    assert sent.status is PaymentStatus.AWAITING_CODE
    assert len(sendgrid_standin.requests) == 1
    captured = sendgrid_standin.requests[0]
    validate_sendgrid(sendgrid_contract, captured)
    body = captured.json()
    assert body["personalizations"][0]["to"] == [{"email": inv.email}]
    plain = next(part["value"] for part in body["content"] if part["type"] == "text/plain")
    match = CODE_RE.match(plain)
    assert match, "the code comes first"

    verified = await gw.verify_code(
        inv.invoice_id, opened.run_id, VerifyCodeInput(code=match.group(1), client=BROWSER)
    )
    assert verified.verified
    paid = await gw.submit_payment(
        inv.invoice_id, opened.run_id, SubmitPaymentInput(details=pay_details(), client=BROWSER)
    )
    assert paid.status is PaymentStatus.PAID

    failed = await delivery_failures(h, inv.invoice_id)
    assert len(failed) == 1
    details: dict[str, Any] = failed[0]["details"]
    if isinstance(details, str):
        import json

        details = json.loads(details)
    assert details["provider"] == "twilio" and details["provider_code"] == "21211"
    assert details["permanent"] is True
    message_id = sendgrid_standin.replies[0].headers["X-Message-Id"]
    recorded = await h.pool.fetchval(
        "SELECT provider_message_id FROM otp_challenges WHERE run_id = $1 AND channel = 'email'",
        opened.run_id,
    )
    assert recorded == message_id


async def test_transient_fault_is_retried_once_more(
    provider_harness: Harness, twilio_standin: TwilioStandIn
) -> None:
    h, gw = provider_harness, provider_harness.gateway
    inv = await create_invoice(h.pool)
    twilio_standin.script(Reply.json(500, twilio_error(20500, "Internal Server Error", 500)))
    opened = await gw.open(inv.invoice_id, BROWSER)
    sent = await gw.request_code(
        inv.invoice_id, opened.run_id, RequestCodeInput(channel=Channel.SMS, client=BROWSER)
    )
    assert sent.status is PaymentStatus.AWAITING_CODE
    assert [r.status for r in twilio_standin.replies] == [500, 201]
    sid = twilio_standin.replies[1].json_body()["sid"]
    recorded = await h.pool.fetchval(
        "SELECT provider_message_id FROM otp_challenges WHERE run_id = $1 AND sent_at IS NOT NULL",
        opened.run_id,
    )
    assert recorded == sid


async def test_undelivered_callback_marks_sms_failed(
    provider_harness: Harness, twilio_standin: TwilioStandIn
) -> None:
    h, gw = provider_harness, provider_harness.gateway
    inv = await create_invoice(h.pool)
    opened = await gw.open(inv.invoice_id, BROWSER)
    await gw.request_code(
        inv.invoice_id, opened.run_id, RequestCodeInput(channel=Channel.SMS, client=BROWSER)
    )
    sid = twilio_standin.replies[0].json_body()["sid"]

    async def signal_attempt(workflow_id: str, run_id: str, event: DeliveryStatusEvent) -> None:
        handle = h.client.get_workflow_handle_for(PayInvoiceWorkflow.run, workflow_id, run_id=run_id)
        await handle.signal(PayInvoiceWorkflow.delivery_status, event)

    app = FastAPI()
    app.include_router(
        twilio_status_router(
            h.settings.model_copy(update={"twilio_status_callback_url": CALLBACK}), h.pool, signal_attempt
        )
    )
    form = {
        "AccountSid": ACCOUNT_SID,
        "MessageSid": sid,
        "MessageStatus": "undelivered",
        "ErrorCode": "30003",
        "To": inv.phone or "",
        "From": "+15005550006",
    }
    headers = {"X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(CALLBACK, form)}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://portal.internal"
    ) as http:
        r = await http.post(STATUS_PATH, data=form, headers=headers)
    assert r.status_code == 200

    # A signal is handled on the workflow's next task, and its audit row by an activity after that:
    # wait for each (a deadline, not a guess at how long it takes).
    state = await wait_for(
        lambda: gw.state(inv.invoice_id, opened.run_id),
        lambda st: bool(st.failed_channels),
        timeout=60,
        what="SMS marked failed",
    )
    assert state.failed_channels == [Channel.SMS]
    assert [c.channel for c in state.channels if c.channel not in state.failed_channels] == [Channel.EMAIL]
    assert len(await delivery_failures(h, inv.invoice_id)) == 1


async def delivery_failures(h: Harness, invoice_id: str) -> list[Any]:
    """The attempt's OTP_DELIVERY_FAILED audit rows, once the workflow has written one.

    The row is written by an activity the workflow schedules after it learns of the failure: reading
    the trail right after the update (or the signal) returns can come before it.
    """
    trail = await wait_for(
        lambda: fetch_trail(h.pool, invoice_id),
        lambda rows: any(row["event_type"] == "OTP_DELIVERY_FAILED" for row in rows),
        timeout=60,
        what="the OTP_DELIVERY_FAILED audit row",
    )
    return [row for row in trail if row["event_type"] == "OTP_DELIVERY_FAILED"]
