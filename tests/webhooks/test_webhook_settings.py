"""The webhook settings (SPEC §12): defaults, refusals at start-up, and the sealing key ring."""

from datetime import timedelta

import pytest

from domain.webhooks import DEFAULT_RETRY_DELAYS_SECONDS, retry_schedule_is_safe
from infra.settings import SettingsError
from infra.webhook_secrets import SealedSecretError, SecretBox, new_signing_secret
from infra.webhook_settings import secret_box, webhook_config
from tests.hostile.test_deploy_settings import prod
from tests.support import test_settings


def test_the_defaults_keep_the_promised_schedule() -> None:
    config = webhook_config(prod())
    assert config.retry_delays_seconds == DEFAULT_RETRY_DELAYS_SECONDS
    assert retry_schedule_is_safe(config.retry_delays_seconds)
    assert config.retry_delays_seconds[0] <= 10 and len(config.retry_delays_seconds) >= 8
    assert sum(config.retry_delays_seconds) >= 24 * 3600
    assert config.retry_after(1) == 5 and config.retry_after(9) is None
    assert config.disable_after == timedelta(days=5)
    assert not config.address_rules.dev and config.address_rules.allowed_networks == ()


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ({"webhook_retry_schedule": "1s,1s,1s"}, "WEBHOOK_RETRY_SCHEDULE"),
        ({"webhook_retry_schedule": "30s,5m,30m,2h,5h,10h,10h,10h"}, "WEBHOOK_RETRY_SCHEDULE"),
        ({"webhook_retry_schedule": "soon"}, "WEBHOOK_RETRY_SCHEDULE"),
        ({"webhook_disable_after": "five days"}, "WEBHOOK_DISABLE_AFTER"),
        ({"webhook_allow_private_cidrs": "10.0.0.0/8,intranet"}, "WEBHOOK_ALLOW_PRIVATE_CIDRS"),
    ],
)
def test_a_bad_webhook_setting_is_refused_at_start(overrides: dict[str, str], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        prod(**overrides)


def test_dev_may_shorten_the_schedule_and_parse_durations() -> None:
    settings = test_settings(webhook_retry_schedule="0.5,1s", webhook_disable_after="36h")
    config = webhook_config(settings)
    assert config.retry_delays_seconds == (0.5, 1.0)
    assert config.disable_after == timedelta(hours=36)
    assert config.address_rules.dev


def test_sealed_secrets_open_only_for_their_endpoint_and_key() -> None:
    box = secret_box(test_settings())
    secret = new_signing_secret()
    sealed = box.seal("we_a", secret)
    assert secret.encode() not in sealed.sealed
    assert box.open("we_a", sealed) == secret
    with pytest.raises(SealedSecretError):
        box.open("we_b", sealed)  # moved onto another endpoint
    other = SecretBox([("other", b"o" * 32)])
    with pytest.raises(SealedSecretError):
        other.open("we_a", sealed)


def test_a_malformed_key_ring_is_refused_in_one_line() -> None:
    with pytest.raises(SettingsError, match="WEBHOOK_SECRET_KEYS"):
        secret_box(test_settings(webhook_secret_keys="k1:short"))
