"""Environment settings (SPEC §8). Secrets are required in prod and generated under `.portalpay/` in dev."""

import base64
import json
import os
import secrets
from functools import cached_property
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.policy import AttemptTimers, InvoiceKind, OtpPolicy, PaymentMethod, SendCaps
from domain.webhooks import parse_duration, parse_retry_schedule, retry_schedule_is_safe

if TYPE_CHECKING:
    from infra.nacha_config import NachaConfig

STATE_DIR = Path(os.environ.get("PORTALPAY_STATE_DIR", ".portalpay"))
# Written by `portalpay dev` so other commands in the same folder join the dev stack; the
# environment and `.env` take precedence over it.
DEV_ENV_FILE = STATE_DIR / "dev.env"


MIN_SECRET_BYTES = 32
# The role the app logs in as (migrations/0006_app_role.sql); prod refuses any other (SPEC §11).
APP_DATABASE_ROLE = "portalpay_app"
# The Temporal UI origins `portalpay dev` uses: fine on a laptop, refused in prod (finding 5).
DEV_CODEC_CORS_ORIGINS = (
    "http://localhost:8080,http://127.0.0.1:8080,http://localhost:8233,http://127.0.0.1:8233"
)
# Secrets we choose ourselves (provider credentials are whatever the provider issued). Names
# other settings may add later are looked up with getattr, so this list can run ahead of them.
OWN_SECRETS = (
    "staff_api_token",
    "operator_api_token",
    "link_signing_key",
    "otp_hmac_key",
    "audit_chain_key",
    "bank_fingerprint_key",
    "nacha_account_key",
    "processor_webhook_secret",
    "api_key_pepper",
)


# What each process reads (issue 21): compose hands each container these and no others, and prod
# requires exactly these where that process starts. None: every secret (the CLI's own commands).
WORKER_SECRETS = (
    "otp_hmac_key",
    "audit_chain_key",
    "bank_fingerprint_key",
    "nacha_account_key",
    "codec_keys",
    "webhook_secret_keys",
)
PORTAL_SECRETS = (
    "staff_api_token",
    "operator_api_token",
    "link_signing_key",
    "audit_chain_key",
    "processor_webhook_secret",
    "codec_keys",
    "api_key_pepper",
    "webhook_secret_keys",
)
PROCESSOR_SECRETS = ("processor_webhook_secret",)


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line meant for a person."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=(DEV_ENV_FILE, ".env"), extra="ignore")

    # The app's connection: a role that does not own `audit_events` (SPEC §11). Unset: the
    # embedded PostgreSQL, as `portalpay_app`.
    database_url: str | None = None
    # The owner's connection, for migrations only; unset: DATABASE_URL (or the embedded owner).
    database_migration_url: str | None = None
    # Given to `portalpay db migrate`: sets the password `portalpay_app` logs in with.
    database_app_password: SecretStr | None = None
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "portalpay"
    portalpay_env: Literal["prod", "dev"] = "prod"

    staff_api_token: SecretStr | None = None
    operator_api_token: SecretStr | None = None
    link_signing_key: SecretStr | None = None
    otp_hmac_key: SecretStr | None = None
    # Keys the audit chain's HMAC (SPEC §11): required in prod, generated in dev.
    audit_chain_key: SecretStr | None = None
    # "kid:base64key,kid2:base64key": the first encrypts, all decrypt.
    codec_keys: SecretStr | None = None

    email_provider: Literal["console", "sendgrid"] = "console"
    sms_provider: Literal["console", "twilio"] = "console"
    sendgrid_api_key: SecretStr | None = None
    sendgrid_from: str | None = None
    sendgrid_host: str | None = None
    sendgrid_template_id: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_base_url: str | None = None
    twilio_status_callback_url: str | None = None
    company_name: str = "PortalPay"

    otp_code_ttl_seconds: int = Field(default=600, gt=0)
    otp_max_failed: int = Field(default=5, gt=0)
    otp_lockout_seconds: int = Field(default=1800, ge=0)
    otp_resend_cooldown_seconds: int = Field(default=30, ge=0)
    otp_max_sends: int = Field(default=5, gt=0)
    attempt_idle_seconds: int = Field(default=1800, gt=0)
    payment_window_seconds: int = Field(default=900, gt=0)
    otp_required_methods: str = "echeck,ach"
    otp_exempt_kinds: str = "deposit"
    otp_required_above_cents: int | None = Field(default=None, gt=0)
    otp_max_sends_per_destination_day: int = Field(default=10, gt=0)
    # What one pay-link holder may do (issue 21; starters/portal/link_budgets.py): refused requests
    # per OTP_LOCKOUT_SECONDS window, and bank-detail submissions (account validations) per window.
    pay_link_refusals_per_window: int = Field(default=30, gt=0)
    pay_link_payment_tries_per_window: int = Field(default=10, gt=0)

    portal_base_url: str = "http://127.0.0.1:8000"
    link_ttl_seconds: int = Field(default=7 * 24 * 3600, gt=0)
    worker_graceful_shutdown_seconds: int = Field(default=30, ge=0)
    # Parked attempts beyond the cache cost no worker memory; an evicted one replays (~300 ms).
    worker_max_cached_workflows: int = Field(default=1000, ge=0)
    # Browser origins of the Temporal UI allowed to call the codec endpoint (comma-separated).
    codec_cors_origins: str = DEV_CODEC_CORS_ORIGINS
    # Prometheus scrape ports; unset means not exported. The worker has two: PortalPay's own
    # counters (prometheus_client) and the Temporal SDK's metrics (Rust core exporter).
    worker_metrics_port: int | None = Field(default=None, gt=0, lt=65536)
    worker_sdk_metrics_port: int | None = Field(default=None, gt=0, lt=65536)
    portal_metrics_port: int | None = Field(default=None, gt=0, lt=65536)
    # Staff console (SPEC §10): sessions end after this long idle, and at the latest after the
    # absolute lifetime; sign-ins fail closed after too many wrong passwords in the window.
    staff_session_idle_seconds: int = Field(default=30 * 60, gt=0)
    staff_session_absolute_seconds: int = Field(default=12 * 3600, gt=0)
    staff_sign_in_window_seconds: int = Field(default=15 * 60, gt=0)
    staff_sign_in_max_failures_per_account: int = Field(default=5, gt=0)
    staff_sign_in_max_failures_per_address: int = Field(default=20, gt=0)
    # Operator sign-in at /codec/login (issue 21): one server-side session per sign-in, ended by
    # sign-out, idle time or its lifetime; refused sign-ins throttle per address and overall.
    operator_session_idle_seconds: int = Field(default=30 * 60, gt=0)
    operator_session_absolute_seconds: int = Field(default=8 * 3600, gt=0)
    operator_sign_in_window_seconds: int = Field(default=15 * 60, gt=0)
    operator_sign_in_max_failures_per_address: int = Field(default=10, gt=0)
    operator_sign_in_max_failures_overall: int = Field(default=50, gt=0)

    # --- the edge and the cluster (SPEC §11) ---------------------------------------------------
    # Request bodies over this many bytes answer 413 before they are read whole.
    max_request_bytes: int = Field(default=65536, gt=0)
    # Comma-separated IPs/CIDRs of reverse proxies whose X-Forwarded-For/-Proto are believed.
    trusted_proxies: str = ""
    # mTLS to a secured Temporal cluster (paths to PEM files) and/or an API key (Temporal Cloud).
    temporal_tls_cert: str | None = None
    temporal_tls_key: str | None = None
    temporal_tls_ca: str | None = None
    temporal_tls_server_name: str | None = None
    temporal_tls: bool = False  # TLS with the system CAs and no client certificate (API keys)
    temporal_api_key: SecretStr | None = None

    # --- the payment after PAID (SPEC §9) ------------------------------------------------
    processor: Literal["sandbox", "nacha"] = "sandbox"
    processor_sandbox_url: str = "http://127.0.0.1:8010"
    processor_webhook_secret: SecretStr | None = None
    # Unset: <PORTAL_BASE_URL>/webhooks/processor/sandbox.
    processor_webhook_url: str | None = None
    processor_timeout_seconds: float = Field(default=10.0, gt=0)
    sandbox_settlement_seconds: float = Field(default=20.0, ge=0)
    sandbox_late_return_seconds: float = Field(default=40.0, ge=0)
    # The sandbox service's own clock: how often it looks for debits due and deliveries to retry.
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
    ach_return_window_days: int = Field(default=60, gt=0)
    # After the expected settlement date passes without news, ask the processor this often.
    ach_status_check_seconds: int = Field(default=3600, gt=0)
    # --- bank-direct ACH (SPEC §13), checked by nacha_config() when PROCESSOR=nacha ---------------
    nacha_immediate_destination: str | None = None
    nacha_immediate_origin: str | None = None
    nacha_destination_name: str | None = None
    nacha_origin_name: str | None = None
    nacha_company_name: str | None = None
    nacha_company_id: str | None = None
    nacha_odfi_id: str | None = None
    nacha_entry_description: str = "INVOICE"
    nacha_cutoff: str = "15:00 America/Chicago"
    nacha_sftp_url: str | None = None
    nacha_sftp_key_file: str | None = None
    nacha_sftp_host_key: str | None = None
    nacha_returns_folder: str = "/returns"
    # Encrypts account numbers (and each file's body) until the file is uploaded.
    nacha_account_key: SecretStr | None = None
    nacha_prenote_wait_days: int = Field(default=3, ge=0)
    nacha_settle_after_banking_days: int = Field(default=2, ge=0)
    staff_notify_email: str | None = None
    bank_fingerprint_key: SecretStr | None = None

    # --- the company's own systems (SPEC §12) -----------------------------------------------
    # Keys the HMAC under which API key secrets are stored: required in prod, generated in dev.
    api_key_pepper: SecretStr | None = None
    # Requests a second one API key may make (per portal process) before answering 429.
    api_rate_limit_per_second: int = Field(default=50, gt=0)
    max_invoice_cents: int = Field(default=10_000_000, gt=0)
    # --- webhooks to the company's systems (SPEC §12) -------------------------------------
    # An endpoint whose every try has failed this long is disabled and staff are emailed.
    webhook_disable_after: str = "5d"
    # Comma-separated CIDRs of on-premises receivers allowed despite being private (never
    # link-local or metadata addresses).
    webhook_allow_private_cidrs: str = ""
    # Seals endpoint signing secrets at rest: "kid:base64(32 bytes)[,kid2:…]", the first seals.
    webhook_secret_keys: SecretStr | None = None
    # Delays between tries; prod refuses a schedule below SPEC §12's floor (docs/webhooks.md).
    webhook_retry_schedule: str = "5s,5m,30m,2h,5h,10h,10h,10h"

    @model_validator(mode="after")
    def _policy_lists_parse(self) -> "Settings":
        try:
            self.otp_policy  # noqa: B018 - parse early so a typo fails at start-up
        except ValueError as exc:
            raise ValueError(f"OTP_REQUIRED_METHODS / OTP_EXEMPT_KINDS: {exc}") from exc
        return self

    @model_validator(mode="after")
    def _trusted_proxies_parse(self) -> "Settings":
        try:
            self.trusted_proxy_networks  # noqa: B018 - parse early so a typo fails at start-up
        except ValueError as exc:
            raise ValueError(f"TRUSTED_PROXIES: {exc}") from exc
        return self

    @model_validator(mode="after")
    def _webhook_settings_parse(self) -> "Settings":
        for name, parse in (
            ("WEBHOOK_DISABLE_AFTER", lambda: parse_duration(self.webhook_disable_after)),
            ("WEBHOOK_ALLOW_PRIVATE_CIDRS", lambda: self.webhook_allowed_networks),
            ("WEBHOOK_RETRY_SCHEDULE", lambda: parse_retry_schedule(self.webhook_retry_schedule)),
        ):
            try:
                parse()
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from exc
        if not self.is_dev and not retry_schedule_is_safe(parse_retry_schedule(self.webhook_retry_schedule)):
            raise ValueError(
                "WEBHOOK_RETRY_SCHEDULE: outside dev at least 8 retries over at least 24 h, the first within 10 s"
            )
        return self

    @property
    def webhook_allowed_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        return tuple(
            ip_network(item.strip(), strict=False)
            for item in self.webhook_allow_private_cidrs.split(",")
            if item.strip()
        )

    @property
    def is_dev(self) -> bool:
        return self.portalpay_env == "dev"

    @property
    def effective_processor_webhook_url(self) -> str:
        return self.processor_webhook_url or f"{self.portal_base_url.rstrip('/')}/webhooks/processor/sandbox"

    @property
    def trusted_proxy_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        return tuple(
            ip_network(item.strip(), strict=False) for item in self.trusted_proxies.split(",") if item.strip()
        )

    def nacha_config(self) -> "NachaConfig":
        """The bank's NACHA_* values, checked; a SettingsError names the first one wrong."""
        from infra.nacha_config import NachaSettingsError, parse_nacha_config

        try:
            return parse_nacha_config(
                immediate_destination=self.nacha_immediate_destination,
                immediate_origin=self.nacha_immediate_origin,
                destination_name=self.nacha_destination_name,
                origin_name=self.nacha_origin_name,
                company_name=self.nacha_company_name,
                company_id=self.nacha_company_id,
                odfi_id=self.nacha_odfi_id,
                entry_description=self.nacha_entry_description,
                cutoff=self.nacha_cutoff,
                sftp_url=self.nacha_sftp_url,
                sftp_key_file=self.nacha_sftp_key_file,
                sftp_host_key=self.nacha_sftp_host_key,
                returns_folder=self.nacha_returns_folder,
                prenote_wait_days=self.nacha_prenote_wait_days,
                settle_after_banking_days=self.nacha_settle_after_banking_days,
            )
        except NachaSettingsError as exc:
            raise SettingsError(str(exc)) from None

    def refuse_unsafe_prod(self, needs: tuple[str, ...] | None = None) -> None:
        """SPEC §11: prod never starts with a console provider, plain http, a short or repeated
        secret, OTP switched off, the database owner's connection, or dev state lying around.
        `needs`: the secrets this process reads (default: all); others are checked only if set.
        The bank's NACHA_* settings are checked by the worker (`nacha_config()`), which sends the
        files: the portal, facing the internet, never needs the SFTP key."""
        if self.is_dev:
            if DEV_ENV_FILE.exists() and _explicit_env() != "dev":
                # A stray state file must not turn a server into a dev one (finding 4).
                raise SettingsError(
                    f"PORTALPAY_ENV=dev came from {DEV_ENV_FILE} only: set PORTALPAY_ENV=dev in the "
                    "environment to run this in dev, or remove the file"
                )
            return
        if DEV_ENV_FILE.exists():
            raise SettingsError(
                f"{DEV_ENV_FILE} is present (written by `portalpay dev`): remove it when PORTALPAY_ENV=prod"
            )
        sends_messages = needs is None or "otp_hmac_key" in needs or "staff_api_token" in needs
        for setting, provider in (
            ("EMAIL_PROVIDER", self.email_provider),
            ("SMS_PROVIDER", self.sms_provider),
        ):
            if provider == "console" and sends_messages:
                raise SettingsError(
                    f"{setting}=console is for dev only: set a real provider when PORTALPAY_ENV=prod"
                )
        if not self.portal_base_url.lower().startswith("https://"):
            raise SettingsError("PORTAL_BASE_URL must be an https:// address when PORTALPAY_ENV=prod")
        for name in (*OWN_SECRETS, "codec_keys", "webhook_secret_keys"):
            if name not in type(self).model_fields:
                continue  # a secret a later release reads
            value: SecretStr | None = getattr(self, name, None)
            if value is None or not value.get_secret_value():
                if needs is not None and name not in needs:
                    continue  # not this process's secret: compose does not hand it over
                # Refused before anything opens: prod never generates its own secrets.
                raise SettingsError(f"{name.upper()} is required when PORTALPAY_ENV=prod")
            if name in ("codec_keys", "webhook_secret_keys"):
                continue  # key rings: their shape is checked where they are read
            if len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
                raise SettingsError(
                    f"{name.upper()} is shorter than {MIN_SECRET_BYTES} bytes; use e.g. "
                    "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
                )
        self._refuse_equal_secrets()
        self._refuse_weak_otp_policy()
        self._refuse_owner_database_url()
        if self.processor == "sandbox":
            raise SettingsError(
                "PROCESSOR=sandbox moves no money and is for dev only: set PROCESSOR=nacha in prod"
            )
        if (needs is None or "operator_api_token" in needs) and set(
            parse_origin_list(self.codec_cors_origins)
        ) & set(parse_origin_list(DEV_CODEC_CORS_ORIGINS)):
            raise SettingsError(
                "CODEC_CORS_ORIGINS still lists the dev Temporal UI origins (localhost): set the "
                "UI's real origin when PORTALPAY_ENV=prod"
            )

    def _refuse_equal_secrets(self) -> None:
        seen: dict[str, str] = {}
        # Each name once (a name listed twice would be "equal" to itself).
        for name in dict.fromkeys(
            (*OWN_SECRETS, "codec_keys", "webhook_secret_keys", "database_app_password")
        ):
            value: SecretStr | None = getattr(self, name, None)
            if value is None or not value.get_secret_value():
                continue
            text = value.get_secret_value()
            if text in seen:
                raise SettingsError(
                    f"{seen[text].upper()} and {name.upper()} have the same value: give each secret "
                    "its own when PORTALPAY_ENV=prod"
                )
            seen[text] = name

    def _refuse_weak_otp_policy(self) -> None:
        policy = self.otp_policy
        missing = [
            m.value for m in (PaymentMethod.ECHECK, PaymentMethod.ACH) if m not in policy.required_methods
        ]
        if missing:
            raise SettingsError(
                f"OTP_REQUIRED_METHODS must include echeck and ach when PORTALPAY_ENV=prod "
                f"(missing: {','.join(missing)})"
            )
        if InvoiceKind.INVOICE in policy.exempt_kinds:
            raise SettingsError("OTP_EXEMPT_KINDS must not exempt invoice when PORTALPAY_ENV=prod")
        if self.otp_lockout_seconds <= 0:
            raise SettingsError("OTP_LOCKOUT_SECONDS must be above 0 when PORTALPAY_ENV=prod")

    def _refuse_owner_database_url(self) -> None:
        if not self.database_url:
            raise SettingsError("DATABASE_URL is required when PORTALPAY_ENV=prod")
        user = unquote(urlsplit(self.database_url).username or "")
        if user != APP_DATABASE_ROLE:
            raise SettingsError(
                f"DATABASE_URL must log in as {APP_DATABASE_ROLE} (the app role) when PORTALPAY_ENV=prod; "
                "the owner's connection belongs in DATABASE_MIGRATION_URL"
            )
        if self.database_migration_url and self.database_migration_url == self.database_url:
            raise SettingsError("DATABASE_URL and DATABASE_MIGRATION_URL must differ when PORTALPAY_ENV=prod")

    @cached_property
    def otp_policy(self) -> OtpPolicy:
        methods = [PaymentMethod(m.strip()) for m in self.otp_required_methods.split(",") if m.strip()]
        kinds = [InvoiceKind(k.strip()) for k in self.otp_exempt_kinds.split(",") if k.strip()]
        return OtpPolicy(
            required_methods=methods, exempt_kinds=kinds, required_above_cents=self.otp_required_above_cents
        )

    def send_caps(self) -> SendCaps:
        return SendCaps(
            per_invoice=self.otp_max_sends,
            per_invoice_window_seconds=max(self.otp_lockout_seconds, 1),
            per_destination_day=self.otp_max_sends_per_destination_day,
            cooldown_seconds=self.otp_resend_cooldown_seconds,
        )

    def attempt_timers(self) -> AttemptTimers:
        return AttemptTimers(
            code_ttl_seconds=self.otp_code_ttl_seconds,
            max_failed=self.otp_max_failed,
            lockout_seconds=self.otp_lockout_seconds,
            resend_cooldown_seconds=self.otp_resend_cooldown_seconds,
            max_sends=self.otp_max_sends,
            idle_seconds=self.attempt_idle_seconds,
            payment_window_seconds=self.payment_window_seconds,
        )

    # --- secrets -------------------------------------------------------------------------

    def secret(self, name: str) -> str:
        """A required secret: from the environment, else (dev only) generated once and kept."""
        value: SecretStr | None = getattr(self, name)
        if value is not None and value.get_secret_value():
            return value.get_secret_value()
        if not self.is_dev:
            raise SettingsError(f"{name.upper()} is required when PORTALPAY_ENV=prod")
        return _dev_secrets()[name]

    def audit_key(self) -> bytes:
        return self.secret("audit_chain_key").encode()

    def codec_key_ring(self) -> list[tuple[str, bytes]]:
        raw = self.secret("codec_keys")
        ring: list[tuple[str, bytes]] = []
        for item in raw.split(","):
            kid, sep, b64 = item.strip().partition(":")
            if not sep or not kid:
                raise SettingsError("CODEC_KEYS must look like 'kid:base64key[,kid2:base64key]'")
            try:
                key = base64.b64decode(b64, validate=True)
            except ValueError as exc:
                raise SettingsError(f"CODEC_KEYS key {kid!r} is not base64") from exc
            if len(key) != 32:
                raise SettingsError(f"CODEC_KEYS key {kid!r} must be 32 bytes (AES-256)")
            ring.append((kid, key))
        return ring


_DEV_SECRET_MAKERS = {
    "staff_api_token": lambda: secrets.token_urlsafe(24),
    "operator_api_token": lambda: secrets.token_urlsafe(24),
    "link_signing_key": lambda: secrets.token_urlsafe(32),
    "otp_hmac_key": lambda: secrets.token_urlsafe(32),
    "codec_keys": lambda: "dev1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
    "audit_chain_key": lambda: secrets.token_urlsafe(32),
    "bank_fingerprint_key": lambda: secrets.token_urlsafe(32),
    "nacha_account_key": lambda: secrets.token_urlsafe(32),
    "processor_webhook_secret": lambda: secrets.token_urlsafe(32),
    "api_key_pepper": lambda: secrets.token_urlsafe(32),
    "webhook_secret_keys": lambda: "dev1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
}


def _dev_secrets() -> dict[str, str]:
    """Generated once and kept; a secret added by a later release is generated on first use."""
    path = STATE_DIR / "secrets.json"
    values: dict[str, str] = dict(json.loads(path.read_text())) if path.exists() else {}
    missing = [name for name in _DEV_SECRET_MAKERS if name not in values]
    if missing:
        STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        values.update({name: _DEV_SECRET_MAKERS[name]() for name in missing})
        write_private_file(path, json.dumps(values, indent=2))
    return values


def write_private_file(path: Path, text: str) -> None:
    """Written readable by the owner only from the first byte: created 0600 under a temporary
    name and renamed over, so no other user ever sees a window where the secrets are readable."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def parse_origin_list(raw: str) -> list[str]:
    return [origin.strip().rstrip("/") for origin in raw.split(",") if origin.strip()]


def _explicit_env() -> str | None:
    """PORTALPAY_ENV as the process environment or `.env` sets it, the dev state file aside."""
    if os.environ.get("PORTALPAY_ENV"):
        return os.environ["PORTALPAY_ENV"]
    dotenv = Path(".env")
    if dotenv.is_file():
        for line in dotenv.read_text().splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and key.strip() == "PORTALPAY_ENV":
                return value.strip().strip("\"'")
    return None


def dev_secret(name: str) -> str:
    """The dev secret `name` generated under `.portalpay/` (shared by every dev process that reads it)."""
    return _dev_secrets()[name]


def load_settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        first = str(exc).splitlines()
        raise SettingsError(" ".join(line.strip() for line in first[:3])) from exc
