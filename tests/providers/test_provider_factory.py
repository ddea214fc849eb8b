"""build_code_senders: console by default, the SDK senders by settings, one clear line when unusable."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, cast

import asyncpg
import pytest

from domain.channels import Channel
from infra.providers.delivery.base import OutboundMessage
from infra.providers.delivery.console import ConsoleSender
from infra.providers.delivery.factory import build_code_senders, check_provider_settings, close_code_senders
from infra.providers.delivery.messages import compose_otp_message
from infra.providers.delivery.sendgrid_email import SendGridEmailSender
from infra.providers.delivery.twilio_sms import TwilioSmsSender
from infra.settings import Settings, SettingsError
from tests.support import outbox_messages
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


def otp_message(channel: Channel, to: str, code: str = "123456") -> OutboundMessage:
    return compose_otp_message(
        channel=channel,
        to=to,
        code=code,
        ttl_seconds=600,
        invoice_number="INV-1001",
        company_name="PortalPay",
        idempotency_key=f"factory-{uuid.uuid4().hex}",
    )


@pytest.mark.parametrize(("env", "echoed"), [("prod", False), ("dev", True)])
async def test_console_by_default_writes_the_outbox_and_echoes_only_in_dev(
    db_pool: asyncpg.Pool, capsys: pytest.CaptureFixture[str], env: str, echoed: bool
) -> None:
    senders = build_code_senders(settings(portalpay_env=env), db_pool)
    tag = uuid.uuid4().hex[:8]
    addresses = {Channel.EMAIL: f"factory-{tag}@example.com", Channel.SMS: f"+1555{int(tag, 16) % 10**7:07d}"}
    for channel, to in addresses.items():
        receipt = await senders[channel].send(otp_message(channel, to, code="246801"))
        assert receipt.provider == "console"
        (row,) = await outbox_messages(db_pool, to)
        assert row["channel"] == channel.value
        assert f"outbox-{row['id']}" == receipt.message_id
        assert "246801" in row["body"]
    printed = capsys.readouterr()
    for to in addresses.values():
        # The terminal is the developer's phone in dev; in prod no code may reach a log or terminal.
        assert (to in printed.err) is echoed
        assert to not in printed.out
    await close_code_senders(senders)


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
    email = await senders[Channel.EMAIL].send(otp_message(Channel.EMAIL, "ada@example.com", "135790"))
    sms = await senders[Channel.SMS].send(otp_message(Channel.SMS, "+15555550101", "864200"))
    # Each message reached its stand-in, to the right recipient with the code, and the receipt
    # carries the id the provider answered with.
    (mail,) = sendgrid_standin.requests
    assert mail.json()["personalizations"][0]["to"][0]["email"] == "ada@example.com"
    assert "135790" in json.dumps(mail.json()["content"])
    assert (email.provider, email.message_id) == (
        "sendgrid",
        sendgrid_standin.replies[0].headers["X-Message-Id"],
    )
    (text,) = twilio_standin.requests
    assert text.form()["To"] == "+15555550101" and "864200" in text.form()["Body"]
    assert (sms.provider, sms.message_id) == ("twilio", twilio_standin.replies[0].json_body()["sid"])
    validate_sendgrid(sendgrid_contract, mail)
    validate_twilio(twilio_contract, text)
    assert (
        twilio_standin.requests[0].form()["StatusCallback"]
        == "https://portal.example.com/webhooks/twilio/status"
    )
    await close_code_senders(senders)


def test_missing_contracts_fail_loudly_instead_of_skipping(tmp_path: Path) -> None:
    """With no ../shared/contracts, a test that checks requests against them fails and names the path."""
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            # Its own temp root: a second session must not touch this one's /tmp/pytest-of-<user>.
            f"--basetemp={tmp_path / 'inner'}",
            f"{__file__}::test_factory_senders_reach_the_stand_ins",
        ],
        env={**os.environ, "PORTALPAY_CONTRACTS_DIR": str(tmp_path / "nowhere")},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"provider contracts not found: {tmp_path / 'nowhere'}" in run.stdout
    assert "1 error" in run.stdout and "skipped" not in run.stdout
