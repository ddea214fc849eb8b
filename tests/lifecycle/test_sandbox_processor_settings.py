"""The sandbox processor's own settings: only what the service reads, from the same variables (issue 19)."""

import pytest

from infra.settings import Settings, SettingsError
from sandbox_processor.settings import ProcessorSettings
from tests.support import test_settings


def test_it_reads_its_variables_and_ignores_the_products(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCESSOR_SANDBOX_URL", "http://0.0.0.0:9123")
    monkeypatch.setenv("PROCESSOR_WEBHOOK_SECRET", "s" * 40)
    monkeypatch.setenv("PORTAL_BASE_URL", "https://pay.example.com/")
    monkeypatch.setenv("SANDBOX_INSTANCE", "acct-7")
    # A product setting the product would refuse at start-up is none of the service's business.
    monkeypatch.setenv("OTP_REQUIRED_METHODS", "not-a-method")
    settings = ProcessorSettings()
    assert settings.listen_address() == ("0.0.0.0", 9123)
    assert settings.webhook_secret() == "s" * 40
    assert settings.effective_processor_webhook_url == "https://pay.example.com/webhooks/processor/sandbox"
    assert settings.sandbox_instance == "acct-7"
    assert not hasattr(settings, "otp_required_methods") and not hasattr(settings, "temporal_address")


def test_prod_without_a_webhook_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROCESSOR_WEBHOOK_SECRET", raising=False)
    settings = ProcessorSettings(portalpay_env="prod", processor_webhook_secret=None)
    with pytest.raises(SettingsError, match="PROCESSOR_WEBHOOK_SECRET"):
        settings.webhook_secret()


def test_served_in_process_it_takes_the_products_values_and_secret() -> None:
    product = test_settings(
        processor_webhook_secret="in-process-secret-0123456789abcdef",
        processor_webhook_url="http://127.0.0.1:9/hook",
        sandbox_instance="inproc",
        sandbox_settlement_seconds=2.0,
        sandbox_webhook_drop_rate=0.5,
    )
    narrowed = ProcessorSettings.from_settings(product)
    assert narrowed.webhook_secret() == product.secret("processor_webhook_secret")
    assert narrowed.effective_processor_webhook_url == product.effective_processor_webhook_url
    for name in ProcessorSettings.model_fields:
        if name != "processor_webhook_secret":
            assert getattr(narrowed, name) == getattr(product, name), name


def test_its_declarations_agree_with_the_products() -> None:
    """The service declares what it reads (it never loads the product's settings); the product's
    `Settings` declares the same variables for the in-process service and its own client. The two
    declarations must not drift apart: same type, default and bounds for every shared variable."""
    product_fields = Settings.model_fields
    for name, field in ProcessorSettings.model_fields.items():
        assert name in product_fields, name
        theirs = product_fields[name]
        assert (field.annotation, field.default, field.metadata) == (
            theirs.annotation,
            theirs.default,
            theirs.metadata,
        ), name
