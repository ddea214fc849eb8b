"""The sandbox processor's own settings: only what the service reads, from the same variables.

The service runs apart from the product (`portalpay processor`), so it does not load the
product's settings (OTP policy, Temporal, providers): it reads where it listens
(PROCESSOR_SANDBOX_URL), where and how it signs its webhooks (PROCESSOR_WEBHOOK_URL or
PORTAL_BASE_URL, PROCESSOR_WEBHOOK_SECRET), its database, and the SANDBOX_* clock and faults.
`portalpay dev` and the tests serve it in-process from the product's settings
(`ProcessorSettings.from_settings`), so both sides sign and verify with the same secret.
"""

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.db import APP_ROLE, embedded_database_url, with_user
from infra.settings import DEV_ENV_FILE, Settings, SettingsError, dev_secret

WEBHOOK_SECRET = "processor_webhook_secret"


class ProcessorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=(DEV_ENV_FILE, ".env"), extra="ignore")

    portalpay_env: Literal["prod", "dev"] = "prod"
    # The app's role; unset: the embedded PostgreSQL (tables made by `portalpay db migrate`).
    database_url: str | None = None
    processor_sandbox_url: str = "http://127.0.0.1:8010"
    processor_webhook_secret: SecretStr | None = None
    # Unset: <PORTAL_BASE_URL>/webhooks/processor/sandbox.
    processor_webhook_url: str | None = None
    portal_base_url: str = "http://127.0.0.1:8000"
    sandbox_settlement_seconds: float = Field(default=20.0, ge=0)
    sandbox_late_return_seconds: float = Field(default=40.0, ge=0)
    # The service's own clock: how often it looks for debits due and deliveries to retry.
    sandbox_tick_seconds: float = Field(default=0.5, gt=0)
    sandbox_webhook_retry_seconds: float = Field(default=1.0, gt=0)
    # Faults on purpose, for tests and the campaign: share of events never delivered by webhook,
    # share delivered twice, and whether a debit's events are held until it has no more to come and
    # then sent newest first.
    sandbox_webhook_drop_rate: float = Field(default=0.0, ge=0, le=1)
    sandbox_webhook_duplicate_rate: float = Field(default=0.0, ge=0, le=1)
    sandbox_webhook_reverse: bool = False
    # Partitions the sandbox ledger like separate sandbox accounts sharing one database.
    sandbox_instance: str = Field(default="default", min_length=1, max_length=64)

    @classmethod
    def from_settings(cls, settings: Settings) -> "ProcessorSettings":
        """The product's settings narrowed to these (the service served in-process), secret resolved."""
        values = {name: getattr(settings, name) for name in cls.model_fields}
        values[WEBHOOK_SECRET] = SecretStr(settings.secret(WEBHOOK_SECRET))
        return cls.model_validate(values)

    @property
    def is_dev(self) -> bool:
        return self.portalpay_env == "dev"

    @property
    def effective_processor_webhook_url(self) -> str:
        return self.processor_webhook_url or f"{self.portal_base_url.rstrip('/')}/webhooks/processor/sandbox"

    def webhook_secret(self) -> str:
        """PROCESSOR_WEBHOOK_SECRET; in dev, the one generated for the portal under `.portalpay/`."""
        value = self.processor_webhook_secret
        if value is not None and value.get_secret_value():
            return value.get_secret_value()
        if not self.is_dev:
            raise SettingsError(f"{WEBHOOK_SECRET.upper()} is required when PORTALPAY_ENV=prod")
        return dev_secret(WEBHOOK_SECRET)

    def listen_address(self) -> tuple[str, int]:
        parts = urlsplit(self.processor_sandbox_url)
        return parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)

    def database_dsn(self) -> str:
        """DATABASE_URL, else the embedded server as the app's own role (like the worker and portal)."""
        return self.database_url or with_user(embedded_database_url(), APP_ROLE)


def load_processor_settings() -> ProcessorSettings:
    try:
        return ProcessorSettings()
    except ValueError as exc:
        first = str(exc).splitlines()
        raise SettingsError(" ".join(line.strip() for line in first[:3])) from exc
