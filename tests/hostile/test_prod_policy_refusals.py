"""Issue 21, finding 4: prod started with OTP switched off, one value for every secret, the database
owner's connection, a `.portalpay/dev.env` that flipped it into dev, and dev secrets written readable
before they were chmod-ed. Each is tried again exactly so; each must now be one clear line."""

import os
import stat
from pathlib import Path
from typing import Any

import pytest

import infra.settings as settings_module
from infra.settings import Settings, SettingsError
from tests.hostile.test_deploy_settings import prod


@pytest.fixture(autouse=True)
def _no_dev_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This checkout's own `.portalpay` never decides these tests."""
    state = tmp_path / "state"
    monkeypatch.setattr(settings_module, "STATE_DIR", state)
    monkeypatch.setattr(settings_module, "DEV_ENV_FILE", state / "dev.env")
    monkeypatch.delenv("PORTALPAY_ENV", raising=False)
    monkeypatch.chdir(tmp_path)
    return state


def _refused(settings: Settings) -> str:
    with pytest.raises(SettingsError) as refused:
        settings.refuse_unsafe_prod()
    message = str(refused.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"otp_required_methods": ""}, "OTP_REQUIRED_METHODS"),
        ({"otp_required_methods": "echeck"}, "OTP_REQUIRED_METHODS"),
        ({"otp_required_methods": "ach"}, "OTP_REQUIRED_METHODS"),
        ({"otp_exempt_kinds": "invoice,deposit"}, "OTP_EXEMPT_KINDS"),
        ({"otp_lockout_seconds": 0}, "OTP_LOCKOUT_SECONDS"),
    ],
)
def test_prod_refuses_otp_policy_switched_off(overrides: dict[str, Any], named: str) -> None:
    assert named in _refused(prod(**overrides))


def test_prod_refuses_one_value_for_every_secret() -> None:
    same = "x" * 40
    message = _refused(
        prod(
            staff_api_token=same,
            operator_api_token=same,
            link_signing_key=same,
            otp_hmac_key=same,
            audit_chain_key=same,
            bank_fingerprint_key=same,
            processor_webhook_secret=same,
        )
    )
    assert "same value" in message and same not in message


def test_prod_refuses_the_staff_token_as_the_operator_token() -> None:
    shared = "t" * 40
    message = _refused(prod(staff_api_token=shared, operator_api_token=shared))
    assert "STAFF_API_TOKEN" in message and "OPERATOR_API_TOKEN" in message and shared not in message


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://portalpay:owner-password@postgres:5432/portalpay",  # the compose owner
        "postgresql://postgres@db.internal/portalpay",
    ],
)
def test_prod_refuses_the_database_owner_connection(url: str) -> None:
    message = _refused(prod(database_url=url))
    assert "DATABASE_URL" in message and "owner-password" not in message


def test_prod_refuses_a_missing_database_url() -> None:
    assert "DATABASE_URL" in _refused(prod(database_url=None))


def test_prod_refuses_the_dev_codec_cors_origins() -> None:
    default = Settings.model_fields["codec_cors_origins"].default
    assert "CODEC_CORS_ORIGINS" in _refused(prod(codec_cors_origins=default))


def test_a_dev_env_file_does_not_turn_a_server_into_dev(_no_dev_state: Path) -> None:
    _no_dev_state.mkdir(parents=True)
    dev_env = _no_dev_state / "dev.env"
    dev_env.write_text("PORTALPAY_ENV=dev\n")
    # As `load_settings` reads it: the state file is one of the env files.
    settings = Settings(
        _env_file=(dev_env,),
        **{k: v for k, v in prod().model_dump().items() if k != "portalpay_env"},
    )
    assert settings.is_dev  # what the file does to a command line tool in this folder …
    assert "dev.env" in _refused(settings)  # … and why a server refuses to start on it


def test_prod_refuses_to_start_beside_a_dev_env_file(
    _no_dev_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_dev_state.mkdir(parents=True)
    (_no_dev_state / "dev.env").write_text("PORTALPAY_ENV=dev\n")
    monkeypatch.setenv("PORTALPAY_ENV", "prod")
    assert "dev.env" in _refused(prod())


def test_explicit_dev_beside_the_dev_env_file_still_runs(
    _no_dev_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_dev_state.mkdir(parents=True)
    (_no_dev_state / "dev.env").write_text("PORTALPAY_ENV=dev\n")
    monkeypatch.setenv("PORTALPAY_ENV", "dev")
    prod(portalpay_env="dev").refuse_unsafe_prod()


def test_dev_secrets_are_private_from_the_first_byte(
    _no_dev_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A chmod after the write leaves a window where the file is world-readable; without the chmod
    # (here: made a no-op) the old code left the secrets readable by everyone.
    monkeypatch.setattr(Path, "chmod", lambda self, mode: None)
    monkeypatch.setattr(os, "chmod", lambda *args, **kwargs: None)
    old_umask = os.umask(0o022)
    try:
        values = settings_module._dev_secrets()
    finally:
        os.umask(old_umask)
    path = _no_dev_state / "secrets.json"
    assert values["operator_api_token"] and path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(_no_dev_state.glob(".*.tmp")) == []
