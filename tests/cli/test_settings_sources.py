"""SPEC §8's settings as a fresh process sees them: the defaults, `.env`, and dev-generated secrets.

Each case runs `infra.settings` in a subprocess with an environment holding none of the settings and
its own working directory, so `.env`, `.portalpay/` and `STATE_DIR` (read at import) are the
case's own, never the developer's or another test's.
"""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.settings import OWN_SECRETS, Settings

# What SPEC §8's table says, by setting name.
SPEC_DEFAULTS: dict[str, Any] = {
    "database_url": None,
    "temporal_address": "127.0.0.1:7233",
    "temporal_namespace": "default",
    "temporal_task_queue": "portalpay",
    "portalpay_env": "prod",
    "email_provider": "console",
    "sms_provider": "console",
    "otp_code_ttl_seconds": 600,
    "otp_max_failed": 5,
    "otp_lockout_seconds": 1800,
    "otp_resend_cooldown_seconds": 30,
    "otp_max_sends": 5,
    "attempt_idle_seconds": 1800,
    "payment_window_seconds": 900,
    "otp_required_methods": "echeck,ach",
    "otp_exempt_kinds": "deposit",
}

PROBE = """
import json, sys
from infra.settings import Settings, SettingsError
names = json.loads(sys.argv[1])
secrets = json.loads(sys.argv[2])
s = Settings()
out = {"values": {n: getattr(s, n) for n in names}, "secrets": {}, "errors": {}}
for name in secrets:
    try:
        out["secrets"][name] = s.secret(name)
    except SettingsError as exc:
        out["errors"][name] = str(exc)
print(json.dumps(out))
"""


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without a single PortalPay setting in it (whatever the developer exported)."""
    fields = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in fields and not k.startswith("PORTALPAY_")}
    env.update(extra)
    return env


def probe(
    cwd: Path, *, names: list[str] | None = None, secrets: tuple[str, ...] = (), **env: str
) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(names or list(SPEC_DEFAULTS)), json.dumps(list(secrets))],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def test_the_defaults_are_the_specs(tmp_path: Path) -> None:
    assert probe(tmp_path)["values"] == SPEC_DEFAULTS


def test_dot_env_is_read_and_the_environment_wins_over_it(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "TEMPORAL_NAMESPACE=from-dot-env\nOTP_MAX_FAILED=7\nATTEMPT_IDLE_SECONDS=1200\n"
    )
    values = probe(tmp_path, ATTEMPT_IDLE_SECONDS="600")["values"]
    assert values["temporal_namespace"] == "from-dot-env"
    assert values["otp_max_failed"] == 7
    assert values["attempt_idle_seconds"] == 600  # the environment, not .env
    assert values["temporal_address"] == "127.0.0.1:7233"  # what .env does not name keeps its default
    # Another folder, no .env: nothing carried over.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert probe(elsewhere)["values"]["temporal_namespace"] == "default"


def test_dev_generates_each_secret_once_and_keeps_it_under_portalpay(tmp_path: Path) -> None:
    wanted = (*OWN_SECRETS, "codec_keys", "webhook_secret_keys")
    first = probe(tmp_path, secrets=wanted, PORTALPAY_ENV="dev")
    assert not first["errors"]
    made = first["secrets"]
    assert set(made) == set(wanted)
    assert len(set(made.values())) == len(made), "each secret is its own"
    for name in OWN_SECRETS:
        assert len(made[name].encode()) >= 32, name
    kept = tmp_path / ".portalpay" / "secrets.json"
    assert json.loads(kept.read_text()) == made
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600, "readable by its owner only"
    # The next process in the same folder gets the same secrets (links and codes keep working).
    assert probe(tmp_path, secrets=wanted, PORTALPAY_ENV="dev")["secrets"] == made
    # A secret given in the environment is used as given, and not written down.
    given = probe(tmp_path, secrets=("otp_hmac_key",), PORTALPAY_ENV="dev", OTP_HMAC_KEY="x" * 40)
    assert given["secrets"]["otp_hmac_key"] == "x" * 40
    assert json.loads(kept.read_text())["otp_hmac_key"] == made["otp_hmac_key"]


@pytest.mark.parametrize("name", ["staff_api_token", "link_signing_key", "otp_hmac_key", "codec_keys"])
def test_prod_never_generates_a_secret(tmp_path: Path, name: str) -> None:
    found = probe(tmp_path, secrets=(name,))  # PORTALPAY_ENV unset: prod
    assert found["errors"] == {name: f"{name.upper()} is required when PORTALPAY_ENV=prod"}
    assert not (tmp_path / ".portalpay").exists()
