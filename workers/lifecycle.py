"""The worker's processor and lifecycle settings, from the environment (SPEC §9, §13).

`PROCESSOR` chooses who moves the money: `sandbox` (the sandbox service over HTTP, dev only) or
`nacha` (NACHA files to the company's bank). The attempt, the follower and reconciliation see
only the processor interface (infra/providers/processor/port.py)."""

from dataclasses import dataclass

import asyncpg

from activities.settlement import LifecycleConfig
from infra.nacha.processor import NachaProcessor
from infra.nacha.sealing import Sealer
from infra.nacha_config import NachaConfig
from infra.pay_links import make_pay_link
from infra.providers.processor.client import HttpProcessorClient
from infra.providers.processor.port import PaymentProcessor
from infra.settings import Settings


@dataclass(frozen=True)
class NachaWiring:
    config: NachaConfig
    sealer: Sealer


def nacha_wiring(settings: Settings) -> NachaWiring | None:
    if settings.processor != "nacha":
        return None
    return NachaWiring(settings.nacha_config(), Sealer(settings.secret("nacha_account_key")))


def processor_client(settings: Settings, pool: asyncpg.Pool | None = None) -> PaymentProcessor:
    wiring = nacha_wiring(settings)
    if wiring is not None:
        if pool is None:
            raise ValueError("the nacha processor keeps its entries in PostgreSQL: give it the pool")
        return NachaProcessor(
            pool, wiring.config, wiring.sealer, settings.secret("bank_fingerprint_key").encode()
        )
    return HttpProcessorClient(settings.processor_sandbox_url, timeout=settings.processor_timeout_seconds)


def lifecycle_config(settings: Settings) -> LifecycleConfig:
    return LifecycleConfig(
        return_window_days=settings.ach_return_window_days,
        status_check_seconds=settings.ach_status_check_seconds,
        staff_notify_email=settings.staff_notify_email,
        pay_link=lambda invoice_id: make_pay_link(settings, invoice_id),
    )
