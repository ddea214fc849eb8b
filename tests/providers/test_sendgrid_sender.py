"""SendGridEmailSender: the real `sendgrid` SDK against a local stand-in, checked against SendGrid's document."""

import logging
import socket
import time

import pytest
from openapi_core import OpenAPI
from openapi_core.exceptions import OpenAPIError

from domain.channels import Channel
from infra.providers.delivery.base import OutboundMessage, PermanentDeliveryError, TransientDeliveryError
from infra.providers.delivery.messages import compose_otp_message
from infra.providers.delivery.sendgrid_email import SendGridEmailSender
from tools.standins.providers import Drop, Hang, Reply, SendGridStandIn

from .contracts import validate_sendgrid

CODE = "493817"
TO = "charles.babbage@example.com"
TIMEOUT = 0.5


def email_message(key: str = "pay-invoice-INV-1001/run-1/1") -> OutboundMessage:
    return compose_otp_message(
        channel=Channel.EMAIL,
        to=TO,
        code=CODE,
        ttl_seconds=600,
        invoice_number="INV-1001",
        company_name="Analytical Engines Ltd",
        idempotency_key=key,
    )


def sender_for(standin: SendGridStandIn, **kwargs: object) -> SendGridEmailSender:
    return SendGridEmailSender(
        api_key="SG.test-key",
        from_email="Analytical Engines <codes@portalpay.test>",
        host=standin.url,
        timeout=TIMEOUT,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_accepted_send_returns_message_id_and_matches_contract(
    sendgrid_standin: SendGridStandIn, sendgrid_contract: OpenAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sendgrid_standin.script(Reply(202, b"", {"X-Message-Id": "sg-msg-123"}))
    receipt = await sender_for(sendgrid_standin).send(email_message())

    assert receipt.provider == "sendgrid"
    assert receipt.message_id == "sg-msg-123"
    assert len(sendgrid_standin.requests) == 1
    captured = sendgrid_standin.requests[0]
    validate_sendgrid(sendgrid_contract, captured)
    assert captured.headers["Authorization"] == "Bearer SG.test-key"
    body = captured.json()
    assert body["from"] == {"email": "codes@portalpay.test", "name": "Analytical Engines"}
    assert body["personalizations"][0]["to"] == [{"email": TO}]
    assert body["personalizations"][0]["custom_args"] == {"idempotency_key": "pay-invoice-INV-1001/run-1/1"}
    content = {part["type"]: part["value"] for part in body["content"]}
    assert set(content) == {"text/plain", "text/html"}
    # The code comes first, then its expiry, the invoice and the company; no link to log in.
    assert content["text/plain"].startswith(CODE)
    assert "10 minutes" in content["text/plain"] and "INV-1001" in content["text/plain"]
    assert "Analytical Engines Ltd" in content["text/plain"]
    assert CODE in content["text/html"] and "href" not in content["text/html"]
    assert CODE in body["subject"]
    assert "template_id" not in body
    # Nothing logged the code or the full address (the SDK's own DEBUG payload dump included).
    assert CODE not in caplog.text and TO not in caplog.text
    assert "c•••@example.com" in caplog.text


async def test_dynamic_template_carries_template_data(
    sendgrid_standin: SendGridStandIn, sendgrid_contract: OpenAPI
) -> None:
    await sender_for(sendgrid_standin, template_id="d-0123456789abcdef").send(email_message())
    captured = sendgrid_standin.requests[0]
    validate_sendgrid(sendgrid_contract, captured)
    body = captured.json()
    assert body["template_id"] == "d-0123456789abcdef"
    data = body["personalizations"][0]["dynamic_template_data"]
    assert data == {
        "code": CODE,
        "expires_minutes": "10",
        "invoice_number": "INV-1001",
        "company_name": "Analytical Engines Ltd",
    }


def test_contract_refuses_a_body_without_from(sendgrid_contract: OpenAPI) -> None:
    """The validator has teeth: a body SendGrid's document forbids is refused."""
    from tools.standins.providers import Captured

    bad = Captured(
        "POST",
        "/v3/mail/send",
        "",
        {"Content-Type": "application/json", "Authorization": "Bearer x"},
        b'{"personalizations": [{"to": [{"email": "a@example.com"}]}], "subject": "s"}',
    )
    with pytest.raises(OpenAPIError):
        validate_sendgrid(sendgrid_contract, bad)


SENDGRID_400 = {
    "errors": [
        {
            "message": f"Does not contain a valid address: {TO}x",
            "field": "personalizations.0.to.0.email",
            "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.personalizations.to",
        }
    ]
}


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (Reply.json(400, SENDGRID_400), "400:personalizations.0.to.0.email"),
        (Reply.json(401, {"errors": [{"message": "authorization required", "field": None}]}), "401"),
        (
            Reply.json(
                403,
                {
                    "errors": [
                        {
                            "message": "The from address does not match a verified Sender Identity.",
                            "field": "from",
                        }
                    ]
                },
            ),
            "403:from",
        ),
        (Reply.json(413, {"errors": [{"message": "too large", "field": None}]}), "413"),
    ],
    ids=["400-invalid-address", "401-credentials", "403-sender", "413"],
)
async def test_permanent_failures(
    sendgrid_standin: SendGridStandIn, reply: Reply, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sendgrid_standin.script(reply)
    with pytest.raises(PermanentDeliveryError) as info:
        await sender_for(sendgrid_standin).send(email_message())
    assert info.value.provider == "sendgrid"
    assert info.value.provider_code == code
    assert len(sendgrid_standin.requests) == 1
    assert TO not in str(info.value) and CODE not in str(info.value)
    assert TO not in caplog.text and CODE not in caplog.text


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (Reply.json(429, {"errors": [{"message": "too many requests", "field": None}]}), "429"),
        (Reply.json(500, {"errors": [{"message": "internal server error"}]}), "500"),
        (Reply(502, b"<html>bad gateway</html>", {"Content-Type": "text/html"}), "502"),
        (Reply(503, b""), "503"),
    ],
    ids=["429", "500", "502", "503"],
)
async def test_transient_failures(sendgrid_standin: SendGridStandIn, reply: Reply, code: str) -> None:
    sendgrid_standin.script(reply)
    with pytest.raises(TransientDeliveryError) as info:
        await sender_for(sendgrid_standin).send(email_message())
    assert info.value.provider_code == code
    assert len(sendgrid_standin.requests) == 1  # the SDK did not retry on its own


async def test_hang_past_timeout_is_transient(sendgrid_standin: SendGridStandIn) -> None:
    sendgrid_standin.script(Hang(5))
    started = time.monotonic()
    with pytest.raises(TransientDeliveryError) as info:
        await sender_for(sendgrid_standin).send(email_message())
    assert info.value.provider_code == "timeout"
    assert time.monotonic() - started < 3
    assert len(sendgrid_standin.requests) == 1


async def test_dropped_connection_is_transient(sendgrid_standin: SendGridStandIn) -> None:
    sendgrid_standin.script(Drop())
    with pytest.raises(TransientDeliveryError) as info:
        await sender_for(sendgrid_standin).send(email_message())
    assert info.value.provider_code == "connection"
    assert len(sendgrid_standin.requests) == 1


async def test_refused_connection_is_transient() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sender = SendGridEmailSender(
        api_key="SG.k", from_email="codes@portalpay.test", host=f"http://127.0.0.1:{port}", timeout=TIMEOUT
    )
    with pytest.raises(TransientDeliveryError) as info:
        await sender.send(email_message())
    assert info.value.provider_code == "connection"


async def test_sms_message_is_refused_without_a_request(sendgrid_standin: SendGridStandIn) -> None:
    sms = compose_otp_message(
        channel=Channel.SMS,
        to="+15555550102",
        code=CODE,
        ttl_seconds=600,
        invoice_number="INV-1001",
        company_name="X",
        idempotency_key="k",
    )
    with pytest.raises(PermanentDeliveryError):
        await sender_for(sendgrid_standin).send(sms)
    assert sendgrid_standin.requests == []
