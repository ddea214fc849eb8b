"""The worker's processor client and lifecycle settings, from the environment (SPEC §9)."""

from activities.settlement import LifecycleConfig
from infra.pay_links import make_pay_link
from infra.providers.processor.client import HttpProcessorClient, ProcessorClient
from infra.settings import Settings


def processor_client(settings: Settings) -> ProcessorClient:
    return HttpProcessorClient(settings.processor_sandbox_url, timeout=settings.processor_timeout_seconds)


def lifecycle_config(settings: Settings) -> LifecycleConfig:
    return LifecycleConfig(
        return_window_days=settings.ach_return_window_days,
        status_check_seconds=settings.ach_status_check_seconds,
        staff_notify_email=settings.staff_notify_email,
        pay_link=lambda invoice_id: make_pay_link(settings, invoice_id),
    )
