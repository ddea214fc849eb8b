"""Choose the code sender for each channel from the settings (SPEC §6, §8).

`console` (the dev outbox) is the default. `EMAIL_PROVIDER=sendgrid` / `SMS_PROVIDER=twilio`
select the real SDK senders. With a real provider chosen but its credentials missing, a prod
start fails with one line naming what is missing; a dev start warns and falls back to console.
"""

import logging

import asyncpg

from domain.channels import Channel
from infra.providers.delivery.base import CodeSender
from infra.providers.delivery.console import ConsoleSender
from infra.providers.delivery.sendgrid_email import DEFAULT_TIMEOUT_SECONDS, SendGridEmailSender
from infra.providers.delivery.twilio_sms import TwilioSmsSender
from infra.settings import Settings, SettingsError

log = logging.getLogger(__name__)


def _secret(value: object) -> str:
    getter = getattr(value, "get_secret_value", None)
    return str(getter() if getter is not None else value or "")


def sendgrid_missing(settings: Settings) -> list[str]:
    missing = []
    if not _secret(settings.sendgrid_api_key):
        missing.append("SENDGRID_API_KEY")
    if not settings.sendgrid_from:
        missing.append("SENDGRID_FROM")
    return missing


def twilio_missing(settings: Settings) -> list[str]:
    missing = []
    if not settings.twilio_account_sid:
        missing.append("TWILIO_ACCOUNT_SID")
    if not _secret(settings.twilio_auth_token):
        missing.append("TWILIO_AUTH_TOKEN")
    if not (settings.twilio_from or settings.twilio_messaging_service_sid):
        missing.append("TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID")
    return missing


def _needs(setting: str, missing: list[str]) -> str:
    return f"{setting} needs " + (
        ", ".join(missing[:-1]) + " and " + missing[-1] if len(missing) > 1 else missing[0]
    )


def effective_providers(settings: Settings) -> dict[Channel, str]:
    """The provider each channel will use; raises `SettingsError` (one line) in prod when unusable."""
    chosen: dict[Channel, str] = {Channel.EMAIL: "console", Channel.SMS: "console"}
    problems: list[str] = []
    if settings.email_provider == "sendgrid":
        missing = sendgrid_missing(settings)
        if missing:
            problems.append(_needs("EMAIL_PROVIDER=sendgrid", missing))
        else:
            chosen[Channel.EMAIL] = "sendgrid"
    if settings.sms_provider == "twilio":
        missing = twilio_missing(settings)
        if missing:
            problems.append(_needs("SMS_PROVIDER=twilio", missing))
        else:
            chosen[Channel.SMS] = "twilio"
    if problems:
        if not settings.is_dev:
            raise SettingsError("; ".join(problems))
        for problem in problems:
            log.warning("%s; using the console provider (dev outbox) instead", problem)
    return chosen


def check_provider_settings(settings: Settings) -> None:
    """Start-up check for commands that send codes (worker, dev): fails fast in prod."""
    effective_providers(settings)


def build_code_senders(
    settings: Settings, pool: asyncpg.Pool, *, timeout: float = DEFAULT_TIMEOUT_SECONDS
) -> dict[Channel, CodeSender]:
    """One sender per channel. Close them with `close_code_senders` on shutdown."""
    chosen = effective_providers(settings)
    console: ConsoleSender | None = None
    senders: dict[Channel, CodeSender] = {}
    for channel, provider in chosen.items():
        if provider == "sendgrid":
            senders[channel] = SendGridEmailSender(
                api_key=_secret(settings.sendgrid_api_key),
                from_email=str(settings.sendgrid_from),
                host=settings.sendgrid_host,
                template_id=settings.sendgrid_template_id,
                timeout=timeout,
            )
        elif provider == "twilio":
            senders[channel] = TwilioSmsSender(
                account_sid=str(settings.twilio_account_sid),
                auth_token=_secret(settings.twilio_auth_token),
                from_number=settings.twilio_from,
                messaging_service_sid=settings.twilio_messaging_service_sid,
                status_callback_url=settings.twilio_status_callback_url,
                base_url=settings.twilio_base_url,
                timeout=timeout,
            )
        else:
            if console is None:
                console = ConsoleSender(pool, echo=settings.is_dev)
            senders[channel] = console
    return senders


async def close_code_senders(senders: dict[Channel, CodeSender]) -> None:
    seen: set[int] = set()
    for sender in senders.values():
        if id(sender) not in seen:
            seen.add(id(sender))
            await sender.aclose()
