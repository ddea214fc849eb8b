"""SPEC §13 settings, checked at start-up with one clear line each; prod refuses PROCESSOR=sandbox."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from infra.settings import Settings, SettingsError
from tests.bank_direct.conftest import bank_settings
from tests.bank_direct.sshd import SshServer


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, str]:
    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(str(tmp_path / "client"))
    host = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    return {
        "nacha_sftp_url": "sftp://portalpay@bank.example.com:2222/outbound",
        "nacha_sftp_key_file": str(tmp_path / "client"),
        "nacha_sftp_host_key": host,
    }


def _settings(keys: dict[str, str], **overrides: Any) -> Settings:
    return Settings(_env_file=None, portalpay_env="dev", **{**bank_settings(), **keys, **overrides})


def test_a_complete_configuration_parses(keys: dict[str, str]) -> None:
    config = _settings(keys).nacha_config()
    assert config.sftp.host == "bank.example.com" and config.sftp.port == 2222
    assert config.sftp.folder == "/outbound" and config.sftp.returns_folder == "/returns"
    assert config.cutoff.hour == 15 and config.cutoff_zone.key == "America/Chicago"
    assert (config.entry_description, config.prenote_wait_days, config.settle_after_banking_days) == (
        "INVOICE",
        3,
        2,
    )


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ({"nacha_immediate_destination": "011000016"}, "NACHA_IMMEDIATE_DESTINATION"),  # check digit
        ({"nacha_immediate_destination": "01100001"}, "NACHA_IMMEDIATE_DESTINATION"),
        ({"nacha_immediate_origin": "123456789"}, "NACHA_IMMEDIATE_ORIGIN"),
        ({"nacha_company_name": "A COMPANY NAME TOO LONG"}, "NACHA_COMPANY_NAME"),
        ({"nacha_company_id": "12345"}, "NACHA_COMPANY_ID"),
        ({"nacha_odfi_id": "0110000A"}, "NACHA_ODFI_ID"),
        ({"nacha_entry_description": "INVOICE PAYMENT"}, "NACHA_ENTRY_DESCRIPTION"),
        ({"nacha_destination_name": "Bänk"}, "NACHA_DESTINATION_NAME"),
        ({"nacha_origin_name": None}, "NACHA_ORIGIN_NAME"),
        ({"nacha_cutoff": "3pm Chicago"}, "NACHA_CUTOFF"),
        ({"nacha_cutoff": "15:00 Mars/Olympus"}, "NACHA_CUTOFF"),
        ({"nacha_sftp_url": "ftp://bank.example.com/out"}, "NACHA_SFTP_URL"),
        ({"nacha_sftp_url": "sftp://u:pw@bank.example.com/out"}, "NACHA_SFTP_URL"),
        ({"nacha_sftp_key_file": "/nonexistent/key"}, "NACHA_SFTP_KEY_FILE"),
        ({"nacha_sftp_host_key": "ssh-ed25519 not-base64!"}, "NACHA_SFTP_HOST_KEY"),
        ({"nacha_returns_folder": "returns"}, "NACHA_RETURNS_FOLDER"),
    ],
)
def test_each_wrong_setting_is_one_line_naming_it(
    keys: dict[str, str], overrides: dict[str, Any], name: str
) -> None:
    settings = _settings(keys, **overrides)
    with pytest.raises(SettingsError) as refused:
        settings.nacha_config()  # what the worker checks at start, in dev too
    assert name in str(refused.value) and "\n" not in str(refused.value)


def test_a_key_file_that_is_not_a_key_is_refused(keys: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "junk").write_text("not a key")
    with pytest.raises(SettingsError, match="NACHA_SFTP_KEY_FILE"):
        _settings(keys, nacha_sftp_key_file=str(tmp_path / "junk")).nacha_config()


def test_the_sandbox_processor_needs_no_bank_settings() -> None:
    Settings(_env_file=None, portalpay_env="dev", processor="sandbox").refuse_unsafe_prod()


def test_sshd_fixture_settings_parse(tmp_path: Path) -> None:
    server = SshServer(tmp_path / "sshd")  # not started: only its settings are read
    config = _settings(server.settings()).nacha_config()
    assert config.sftp.folder == str(server.outbound)
    assert config.sftp.returns_folder == str(server.returns)


def test_the_worker_refuses_to_start_with_a_wrong_bank_setting_in_one_line(
    keys: dict[str, str], tmp_path: Path
) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PORTALPAY_", "TEMPORAL_", "DATABASE_", "NACHA_", "PROCESSOR"))
    }
    values = {**bank_settings(), **keys, "nacha_immediate_destination": "011000016"}
    env.update({k.upper(): str(v) for k, v in values.items()})
    # No database and an unreachable Temporal: the refusal comes before either is used.
    env.update(
        PORTALPAY_ENV="dev",
        PORTALPAY_STATE_DIR=str(tmp_path / "state"),
        TEMPORAL_ADDRESS="127.0.0.1:9",
        DATABASE_URL="postgresql://nobody@127.0.0.1:9/none",
        COLUMNS="250",
    )
    result = subprocess.run(
        [str(Path(sys.executable).parent / "portalpay"), "worker"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert "NACHA_IMMEDIATE_DESTINATION" in lines[0] and "Traceback" not in result.stderr
