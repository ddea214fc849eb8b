"""TwilioSmsSender: the real `twilio` SDK against a local stand-in, checked against Twilio's document."""

import logging
import socket
import time

import pytest
from openapi_core import OpenAPI
from openapi_core.exceptions import OpenAPIError

from domain.channels import Channel
from infra.providers.delivery.base import OutboundMessage, PermanentDeliveryError, TransientDeliveryError
from infra.providers.delivery.messages import compose_otp_message
from infra.providers.delivery.twilio_sms import BaseUrlTwilioHttpClient, TwilioSmsSender
from tools.standins.providers import Captured, Drop, Hang, Reply, TwilioStandIn, basic_auth, twilio_error

from .contracts import validate_twilio

CODE = "582039"
TO = "+15555550102"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-test-token"
FROM = "+15005550006"
SERVICE_SID = "MG" + "fedcba9876543210" * 2
CALLBACK = "https://portal.example.com/webhooks/twilio/status"
TIMEOUT = 0.5
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


def sms_message() -> OutboundMessage:
    return compose_otp_message(
        channel=Channel.SMS,
        to=TO,
        code=CODE,
        ttl_seconds=600,
        invoice_number="INV-1001",
        company_name="Analytical Engines",
        idempotency_key="pay-invoice-INV-1001/run-1/2",
    )


def sender_for(standin: TwilioStandIn, **kwargs: object) -> TwilioSmsSender:
    options: dict[str, object] = {"from_number": FROM, "status_callback_url": CALLBACK}
    options.update(kwargs)
    return TwilioSmsSender(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        base_url=standin.url,
        timeout=TIMEOUT,
        **options,  # type: ignore[arg-type]
    )


async def test_created_message_returns_sid_and_matches_contract(
    twilio_standin: TwilioStandIn, twilio_contract: OpenAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sender = sender_for(twilio_standin)
    receipt = await sender.send(sms_message())
    await sender.aclose()

    assert receipt.provider == "twilio"
    assert receipt.message_id is not None and receipt.message_id.startswith("SM")
    assert len(twilio_standin.requests) == 1
    captured = twilio_standin.requests[0]
    validate_twilio(twilio_contract, captured)
    assert captured.path == MESSAGES_PATH
    assert captured.headers["Authorization"] == basic_auth(ACCOUNT_SID, AUTH_TOKEN)
    form = captured.form()
    assert form["To"] == TO and form["From"] == FROM and form["StatusCallback"] == CALLBACK
    assert "MessagingServiceSid" not in form
    # Short, the code first and the expiry.
    assert form["Body"].startswith(CODE) and "10 min" in form["Body"] and len(form["Body"]) <= 160
    assert CODE not in caplog.text and TO not in caplog.text
    assert "•••-•••-0102" in caplog.text


async def test_messaging_service_instead_of_from(
    twilio_standin: TwilioStandIn, twilio_contract: OpenAPI
) -> None:
    sender = sender_for(
        twilio_standin, from_number=None, messaging_service_sid=SERVICE_SID, status_callback_url=None
    )
    receipt = await sender.send(sms_message())
    captured = twilio_standin.requests[0]
    validate_twilio(twilio_contract, captured)
    form = captured.form()
    assert form["MessagingServiceSid"] == SERVICE_SID
    assert "From" not in form and "StatusCallback" not in form
    assert receipt.message_id == twilio_standin.replies[0].json_body()["sid"]


@pytest.mark.parametrize(
    ("form", "rule"),
    [
        ({"To": TO, "Body": "x"}, "From or MessagingServiceSid"),
        ({"To": TO, "From": FROM}, "Body or MediaUrl or ContentSid"),
    ],
)
def test_derived_contract_enforces_twilio_conditionals(
    twilio_contract: OpenAPI, form: dict[str, str], rule: str
) -> None:
    from urllib.parse import urlencode

    bad = Captured(
        "POST",
        MESSAGES_PATH,
        "",
        {"Content-Type": "application/x-www-form-urlencoded", "Authorization": basic_auth(ACCOUNT_SID, "t")},
        urlencode(form).encode(),
    )
    with pytest.raises(OpenAPIError):
        validate_twilio(twilio_contract, bad)


def test_base_url_override_keeps_the_path() -> None:
    client = BaseUrlTwilioHttpClient(base_url="http://127.0.0.1:4011/", timeout=1)
    assert client.rewrite("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?x=1") == (
        "http://127.0.0.1:4011/2010-04-01/Accounts/AC1/Messages.json?x=1"
    )
    assert (
        BaseUrlTwilioHttpClient(timeout=1).rewrite("https://api.twilio.com/a") == "https://api.twilio.com/a"
    )


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [
        (21211, 400, f"Invalid 'To' Phone Number: {TO[:-4]}XXXX"),
        (21614, 400, f"'To' number {TO} is not a valid mobile number"),
        (21610, 400, "Attempt to send to unsubscribed recipient"),
        (
            21408,
            400,
            "Permission to send an SMS has not been enabled for the region indicated by the 'To' number",
        ),
        (20003, 401, "Authenticate"),
        (20008, 403, "Resource not accessible with Test Account Credentials"),
    ],
)
async def test_permanent_failures(
    twilio_standin: TwilioStandIn, code: int, status: int, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    twilio_standin.script(Reply.json(status, twilio_error(code, message, status)))
    with pytest.raises(PermanentDeliveryError) as info:
        await sender_for(twilio_standin).send(sms_message())
    assert info.value.provider == "twilio"
    assert info.value.provider_code == str(code)
    assert len(twilio_standin.requests) == 1
    # Twilio echoes the number in some messages; it is blanked before it reaches the error or a log.
    assert TO not in str(info.value) and TO[:-4] not in str(info.value)
    assert TO not in caplog.text and CODE not in caplog.text


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (Reply.json(429, twilio_error(20429, "Too Many Requests", 429)), "20429"),
        (Reply.json(500, twilio_error(20500, "Internal Server Error", 500)), "20500"),
        (Reply(502, b"<html>Bad Gateway</html>", {"Content-Type": "text/html"}), "502"),
        (Reply(503, b""), "503"),
    ],
    ids=["429", "500", "502", "503"],
)
async def test_transient_failures(twilio_standin: TwilioStandIn, reply: Reply, code: str) -> None:
    twilio_standin.script(reply)
    with pytest.raises(TransientDeliveryError) as info:
        await sender_for(twilio_standin).send(sms_message())
    assert info.value.provider_code == code
    assert len(twilio_standin.requests) == 1  # no SDK-level retry


async def test_hang_past_timeout_is_transient(twilio_standin: TwilioStandIn) -> None:
    twilio_standin.script(Hang(5))
    started = time.monotonic()
    with pytest.raises(TransientDeliveryError) as info:
        await sender_for(twilio_standin).send(sms_message())
    assert info.value.provider_code == "timeout"
    assert time.monotonic() - started < 3
    assert len(twilio_standin.requests) == 1


async def test_dropped_connection_is_transient(twilio_standin: TwilioStandIn) -> None:
    twilio_standin.script(Drop())
    with pytest.raises(TransientDeliveryError) as info:
        await sender_for(twilio_standin).send(sms_message())
    assert info.value.provider_code == "connection"
    assert len(twilio_standin.requests) == 1  # urllib3 did not resend the POST


async def test_refused_connection_is_transient() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sender = TwilioSmsSender(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        from_number=FROM,
        base_url=f"http://127.0.0.1:{port}",
        timeout=TIMEOUT,
    )
    with pytest.raises(TransientDeliveryError) as info:
        await sender.send(sms_message())
    assert info.value.provider_code == "connection"


async def test_email_message_is_refused_without_a_request(twilio_standin: TwilioStandIn) -> None:
    email = compose_otp_message(
        channel=Channel.EMAIL,
        to="a@example.com",
        code=CODE,
        ttl_seconds=600,
        invoice_number="INV-1001",
        company_name="X",
        idempotency_key="k",
    )
    with pytest.raises(PermanentDeliveryError):
        await sender_for(twilio_standin).send(email)
    assert twilio_standin.requests == []


def test_needs_from_or_service() -> None:
    with pytest.raises(ValueError):
        TwilioSmsSender(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
