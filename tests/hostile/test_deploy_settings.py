"""Prod start-up refusals and the Temporal connection settings (SPEC §11), without a live cluster."""

import base64
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from temporalio.service import TLSConfig

from infra.settings import Settings, SettingsError
from infra.temporal import connect_options
from tests.support import TEST_CODEC_KEYS

LONG = "s" * 32
# SPEC §11/§13: prod moves money through the company's bank (PROCESSOR=sandbox is refused).
_SSH = Path(tempfile.mkdtemp(prefix="portalpay-prod-settings-"))
asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(_SSH / "client"))
NACHA = {
    "processor": "nacha",
    "nacha_immediate_destination": "011000015",
    "nacha_immediate_origin": "1234567890",
    "nacha_destination_name": "FIRST TEST BANK",
    "nacha_origin_name": "PORTALPAY MOVERS",
    "nacha_company_name": "PORTALPAY MOVERS",
    "nacha_company_id": "1234567890",
    "nacha_odfi_id": "01100001",
    "nacha_sftp_url": "sftp://portalpay@bank.example.com/outbound",
    "nacha_sftp_key_file": str(_SSH / "client"),
    "nacha_sftp_host_key": asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip(),
    "nacha_account_key": "n" * 32,
}


def prod(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "portalpay_env": "prod",
        # Each secret its own value: prod refuses two of the same (issue 21).
        "staff_api_token": "s" * 32,
        "operator_api_token": "o" * 32,
        "link_signing_key": "l" * 32,
        "otp_hmac_key": "h" * 32,
        "audit_chain_key": "a" * 32,
        # SPEC §9: required in prod once the lifecycle's settings exist.
        "bank_fingerprint_key": "b" * 32,
        "processor_webhook_secret": "w" * 32,
        "api_key_pepper": "p" * 32,
        "codec_keys": TEST_CODEC_KEYS,
        "webhook_secret_keys": "wh1:" + base64.b64encode(b"w" * 32).decode(),
        "email_provider": "sendgrid",
        "sms_provider": "twilio",
        "portal_base_url": "https://pay.example.com",
        "database_url": "postgresql://portalpay_app:pw@db.internal:5432/portalpay",
        "codec_cors_origins": "https://temporal.example.com",
        **NACHA,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def test_a_safe_prod_configuration_starts() -> None:
    prod().refuse_unsafe_prod()


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({"email_provider": "console"}, "EMAIL_PROVIDER"),
        ({"sms_provider": "console"}, "SMS_PROVIDER"),
        ({"portal_base_url": "http://pay.example.com"}, "PORTAL_BASE_URL"),
        ({"portal_base_url": "pay.example.com"}, "PORTAL_BASE_URL"),
        ({"staff_api_token": "s" * 31}, "STAFF_API_TOKEN"),
        ({"operator_api_token": "0p3r4t0r-t0k3n"}, "OPERATOR_API_TOKEN"),
        ({"link_signing_key": "k" * 16}, "LINK_SIGNING_KEY"),
        ({"otp_hmac_key": "é" * 15}, "OTP_HMAC_KEY"),  # 30 bytes: counted in bytes, not characters
        ({"audit_chain_key": None}, "AUDIT_CHAIN_KEY"),  # missing: prod never generates its own
        ({"codec_keys": None}, "CODEC_KEYS"),
        ({"nacha_account_key": None}, "NACHA_ACCOUNT_KEY"),
        ({"processor": "sandbox"}, "PROCESSOR=sandbox"),
        ({"webhook_secret_keys": None}, "WEBHOOK_SECRET_KEYS"),
    ],
)
def test_prod_refuses_unsafe_settings_in_one_line(overrides: dict[str, Any], names: str) -> None:
    with pytest.raises(SettingsError) as refused:
        prod(**overrides).refuse_unsafe_prod()
    message = str(refused.value)
    assert names in message and "\n" not in message
    for value in overrides.values():
        if value is None:
            continue
        if "token" in names.lower() or "key" in names.lower():
            assert value not in message  # the secret itself is never printed


def test_dev_is_unaffected() -> None:
    prod(
        portalpay_env="dev",
        email_provider="console",
        portal_base_url="http://127.0.0.1:8000",
        staff_api_token="x",
    ).refuse_unsafe_prod()


@pytest.mark.parametrize("command", [["portal"], ["worker"]])
def test_the_processes_refuse_to_start_and_say_why(command: list[str], tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PORTALPAY_", "TEMPORAL_", "EMAIL_", "SMS_", "DATABASE_"))
    }
    env.update(
        PORTALPAY_ENV="prod",
        STAFF_API_TOKEN=LONG,
        OPERATOR_API_TOKEN=LONG,
        LINK_SIGNING_KEY=LONG,
        OTP_HMAC_KEY=LONG,
        CODEC_KEYS=TEST_CODEC_KEYS,
        PORTAL_BASE_URL="https://pay.example.com",
        # No DATABASE_URL and an unreachable Temporal: the refusal must come before either is used.
        TEMPORAL_ADDRESS="127.0.0.1:9",
        PORTALPAY_STATE_DIR=str(tmp_path / "state"),
        COLUMNS="250",  # rich wraps at 80 columns without a terminal
    )
    result = subprocess.run(
        [str(Path(sys.executable).parent / "portalpay"), *command],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "EMAIL_PROVIDER=console" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


# --- TRUSTED_PROXIES parsing ------------------------------------------------------------------------


def test_trusted_proxies_parse_ips_and_cidrs() -> None:
    settings = prod(trusted_proxies=" 10.0.0.0/8, 192.0.2.7 ,2001:db8::/32")
    assert [str(n) for n in settings.trusted_proxy_networks] == [
        "10.0.0.0/8",
        "192.0.2.7/32",
        "2001:db8::/32",
    ]
    assert prod().trusted_proxy_networks == ()


def test_a_malformed_trusted_proxy_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        prod(trusted_proxies="10.0.0.0/8,proxy.internal")


# --- Temporal TLS and API key --------------------------------------------------------------------------

PEM_CERT = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
PEM_KEY = b"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"
PEM_CA = b"-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"


def test_no_tls_settings_means_a_plain_connection() -> None:
    options = connect_options(prod())
    assert options.tls is False and options.api_key is None


def test_mtls_files_become_the_tls_config(tmp_path: Path) -> None:
    (tmp_path / "client.pem").write_bytes(PEM_CERT)
    (tmp_path / "client.key").write_bytes(PEM_KEY)
    (tmp_path / "ca.pem").write_bytes(PEM_CA)
    options = connect_options(
        prod(
            temporal_tls_cert=str(tmp_path / "client.pem"),
            temporal_tls_key=str(tmp_path / "client.key"),
            temporal_tls_ca=str(tmp_path / "ca.pem"),
            temporal_tls_server_name="temporal.internal",
        )
    )
    assert options.tls == TLSConfig(
        client_cert=PEM_CERT,
        client_private_key=PEM_KEY,
        server_root_ca_cert=PEM_CA,
        domain="temporal.internal",
    )
    assert options.api_key is None


def test_an_api_key_turns_tls_on() -> None:
    options = connect_options(prod(temporal_api_key="cloud-key-123"))
    assert options.api_key == "cloud-key-123" and options.tls is True


def test_an_explicit_tls_flag_without_files_uses_the_system_cas() -> None:
    assert connect_options(prod(temporal_tls=True)).tls is True


def test_a_missing_key_file_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "client.pem").write_bytes(PEM_CERT)
    missing = tmp_path / "nowhere" / "client.key"
    with pytest.raises(SettingsError) as refused:
        connect_options(prod(temporal_tls_cert=str(tmp_path / "client.pem"), temporal_tls_key=str(missing)))
    message = str(refused.value)
    assert message.startswith("TEMPORAL_TLS_KEY") and str(missing) in message and "\n" not in message


def test_a_file_that_is_not_pem_is_refused(tmp_path: Path) -> None:
    (tmp_path / "client.pem").write_bytes(b"not a certificate")
    (tmp_path / "client.key").write_bytes(PEM_KEY)
    with pytest.raises(SettingsError, match=r"TEMPORAL_TLS_CERT: .* is not a PEM file"):
        connect_options(
            prod(
                temporal_tls_cert=str(tmp_path / "client.pem"), temporal_tls_key=str(tmp_path / "client.key")
            )
        )


def test_a_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "client.pem").write_bytes(PEM_CERT)
    with pytest.raises(SettingsError, match="go together"):
        connect_options(prod(temporal_tls_cert=str(tmp_path / "client.pem")))


def test_tls_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in {
        "TEMPORAL_TLS_CERT": "/run/secrets/client.pem",
        "TEMPORAL_TLS_KEY": "/run/secrets/client.key",
        "TEMPORAL_TLS_CA": "/run/secrets/ca.pem",
        "TEMPORAL_TLS_SERVER_NAME": "temporal.internal",
        "TEMPORAL_API_KEY": "k",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    assert (settings.temporal_tls_cert, settings.temporal_tls_key, settings.temporal_tls_ca) == (
        "/run/secrets/client.pem",
        "/run/secrets/client.key",
        "/run/secrets/ca.pem",
    )
    assert settings.temporal_tls_server_name == "temporal.internal"
    assert settings.temporal_api_key is not None and settings.temporal_api_key.get_secret_value() == "k"
