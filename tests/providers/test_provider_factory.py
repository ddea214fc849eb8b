"""build_code_senders: console by default, the SDK senders by settings, one clear line when unusable."""

from typing import Any, cast

import asyncpg
import pytest

from domain.channels import Channel
from infra.providers.delivery.console import ConsoleSender
from infra.providers.delivery.factory import build_code_senders, check_provider_settings, close_code_senders
from infra.providers.delivery.messages import compose_otp_message
from infra.providers.delivery.sendgrid_email import SendGridEmailSender
from infra.providers.delivery.twilio_sms import TwilioSmsSender
from infra.settings import Settings, SettingsError
from tools.standins.providers import SendGridStandIn, TwilioStandIn

from .contracts import validate_sendgrid, validate_twilio

POOL = cast(asyncpg.Pool, object())  # the console sender only keeps it
ACCOUNT_SID = "AC" + "a" * 32

BLANK: dict[str, Any] = {
    "sendgrid_api_key": None,
    "sendgrid_from": None,
    "sendgrid_host": None,
    "sendgrid_template_id": None,
    "twilio_account_sid": None,
    "twilio_auth_token": None,
    "twilio_from": None,
    "twilio_messaging_service_sid": None,
    "twilio_base_url": None,
    "twilio_status_callback_url": None,
}


def settings(**values: Any) -> Settings:
    merged = {"portalpay_env": "prod", "email_provider": "console", "sms_provider": "console", **BLANK}
    merged.update(values)
    return Settings(_env_file=None, **merged)


def test_console_by_default_and_echo_only_in_dev() -> None:
    prod = build_code_senders(settings(), POOL)
    assert isinstance(prod[Channel.EMAIL], ConsoleSender)
    assert prod[Channel.EMAIL] is prod[Channel.SMS]
    assert prod[Channel.EMAIL]._echo is None  # type: ignore[attr-defined]
    dev = build_code_senders(settings(portalpay_env="dev"), POOL)
    assert dev[Channel.SMS]._echo is not None  # type: ignore[attr-defined]


def test_real_providers_by_settings() -> None:
    senders = build_code_senders(
        settings(
            email_provider="sendgrid",
            sendgrid_api_key="SG.k",
            sendgrid_from="codes@portalpay.test",
            sms_provider="twilio",
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token="t",
            twilio_messaging_service_sid="MG" + "b" * 32,
        ),
        POOL,
    )
    assert isinstance(senders[Channel.EMAIL], SendGridEmailSender)
    assert isinstance(senders[Channel.SMS], TwilioSmsSender)


@pytest.mark.parametrize(
    ("values", "line"),
    [
        ({"email_provider": "sendgrid"}, "EMAIL_PROVIDER=sendgrid needs SENDGRID_API_KEY and SENDGRID_FROM"),
        (
            {"email_provider": "sendgrid", "sendgrid_api_key": "SG.k"},
            "EMAIL_PROVIDER=sendgrid needs SENDGRID_FROM",
        ),
        (
            {"sms_provider": "twilio", "twilio_account_sid": ACCOUNT_SID, "twilio_auth_token": "t"},
            "SMS_PROVIDER=twilio needs TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID",
        ),
        (
            {"sms_provider": "twilio"},
            "SMS_PROVIDER=twilio needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN"
            " and TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID",
        ),
    ],
)
def test_prod_start_with_missing_credentials_fails_with_one_line(values: dict[str, Any], line: str) -> None:
    with pytest.raises(SettingsError) as info:
        check_provider_settings(settings(**values))
    assert str(info.value) == line
    with pytest.raises(SettingsError):
        build_code_senders(settings(**values), POOL)


def test_dev_start_with_missing_credentials_falls_back_to_console(caplog: pytest.LogCaptureFixture) -> None:
    senders = build_code_senders(settings(portalpay_env="dev", email_provider="sendgrid"), POOL)
    assert isinstance(senders[Channel.EMAIL], ConsoleSender)
    assert "EMAIL_PROVIDER=sendgrid needs SENDGRID_API_KEY" in caplog.text


async def test_factory_senders_reach_the_stand_ins(
    sendgrid_standin: SendGridStandIn,
    twilio_standin: TwilioStandIn,
    sendgrid_contract: Any,
    twilio_contract: Any,
) -> None:
    """The settings' host overrides (SENDGRID_HOST, TWILIO_BASE_URL) are what `portalpay try` uses."""
    senders = build_code_senders(
        settings(
            email_provider="sendgrid",
            sendgrid_api_key="SG.k",
            sendgrid_from="PortalPay <codes@portalpay.test>",
            sendgrid_host=sendgrid_standin.url,
            sms_provider="twilio",
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token="t",
            twilio_from="+15005550006",
            twilio_base_url=twilio_standin.url,
            twilio_status_callback_url="https://portal.example.com/webhooks/twilio/status",
        ),
        POOL,
    )
    for channel, to in ((Channel.EMAIL, "ada@example.com"), (Channel.SMS, "+15555550101")):
        message = compose_otp_message(
            channel=channel,
            to=to,
            code="123456",
            ttl_seconds=600,
            invoice_number="INV-1001",
            company_name="PortalPay",
            idempotency_key=f"k-{channel}",
        )
        receipt = await senders[channel].send(message)
        assert receipt.message_id
    validate_sendgrid(sendgrid_contract, sendgrid_standin.requests[0])
    validate_twilio(twilio_contract, twilio_standin.requests[0])
    assert (
        twilio_standin.requests[0].form()["StatusCallback"]
        == "https://portal.example.com/webhooks/twilio/status"
    )
    await close_code_senders(senders)
