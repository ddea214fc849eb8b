"""Builds the PortalPay worker: activity classes get their pool and clients once, at start."""

import asyncio
import contextlib
import logging
import secrets
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
from temporalio.client import Client
from temporalio.worker import Worker

from activities.audit import AuditActivities
from activities.bank_accounts import AccountScreen, BankAccountActivities
from activities.metrics_port import NO_METRICS, PaymentMetrics
from activities.nacha import NachaActivities
from activities.otp import OtpActivities
from activities.payer import PayerActivities
from activities.payments import PaymentActivities
from activities.reconciliation import ReconciliationActivities
from activities.settlement import LifecycleConfig, SettlementActivities
from activities.webhook_delivery import WebhookDeliveryActivities
from activities.webhook_relay import WebhookRelayActivities
from domain.channels import Channel
from domain.policy import AttemptTimers, OtpPolicy, SendCaps
from infra.providers.delivery.base import CodeSender
from infra.providers.processor.client import HttpProcessorClient, ProcessorClient
from infra.settings import Settings
from infra.webhook_address import Resolver, system_resolver
from infra.webhook_secrets import SecretBox
from infra.webhook_settings import WebhookConfig, secret_box, webhook_config
from workers.lifecycle import NachaWiring, lifecycle_config, nacha_wiring, processor_client
from workers.sandbox import WORKFLOW_RUNNER
from workflows.ach_payment import AchPaymentWorkflow
from workflows.nacha_files import NachaInboundWorkflow, NachaOriginationWorkflow
from workflows.pay_invoice import PayInvoiceWorkflow
from workflows.reconciliation import ProcessorReconciliationWorkflow
from workflows.webhook_delivery import WebhookDeliveryWorkflow, WebhookSweepWorkflow

log = logging.getLogger(__name__)


@dataclass
class WorkerDeps:
    """What the activities need, created once per process. The policy, timers and caps are the
    worker's settings: every attempt takes them from here, never from its starter."""

    pool: asyncpg.Pool
    senders: Mapping[Channel, CodeSender]
    otp_hmac_key: bytes
    audit_key: bytes
    company_name: str = "PortalPay"
    metrics: PaymentMetrics = NO_METRICS
    # SPEC §9: the processor service (HTTP) and the lifecycle's settings.
    processor: ProcessorClient | None = None
    lifecycle: LifecycleConfig = field(default_factory=LifecycleConfig)
    bank_fingerprint_key: bytes = b"dev-only-bank-fingerprint-key"
    policy: OtpPolicy = field(default_factory=OtpPolicy)
    timers: AttemptTimers = field(default_factory=AttemptTimers)
    caps: SendCaps = field(default_factory=SendCaps)
    # SPEC §13: set when PROCESSOR=nacha (the NACHA jobs' activities are registered only then).
    nacha: NachaWiring | None = None
    # SPEC §12: webhook deliveries (the sealing key, the schedule, the address rules).
    webhook_box: SecretBox | None = None
    webhooks: WebhookConfig = field(default_factory=WebhookConfig)
    webhook_resolver: Resolver = system_resolver

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        pool: asyncpg.Pool,
        senders: Mapping[Channel, CodeSender],
        *,
        metrics: PaymentMetrics = NO_METRICS,
    ) -> "WorkerDeps":
        return cls(
            pool=pool,
            senders=senders,
            otp_hmac_key=settings.secret("otp_hmac_key").encode(),
            audit_key=settings.audit_key(),
            company_name=settings.company_name,
            metrics=metrics,
            policy=settings.otp_policy,
            timers=settings.attempt_timers(),
            caps=settings.send_caps(),
            processor=processor_client(settings, pool),
            nacha=nacha_wiring(settings),
            lifecycle=lifecycle_config(settings),
            bank_fingerprint_key=settings.secret("bank_fingerprint_key").encode(),
            webhook_box=secret_box(settings),
            webhooks=webhook_config(settings),
        )


def build_worker(
    client: Client,
    task_queue: str,
    deps: WorkerDeps,
    *,
    graceful_shutdown: timedelta = timedelta(seconds=30),
    max_cached_workflows: int = 1000,
) -> Worker:
    payer = PayerActivities(deps.pool, policy=deps.policy, timers=deps.timers, audit_key=deps.audit_key)
    otp = OtpActivities(
        deps.pool,
        hmac_key=deps.otp_hmac_key,
        senders=deps.senders,
        company_name=deps.company_name,
        caps=deps.caps,
        audit_key=deps.audit_key,
        metrics=deps.metrics,
    )
    audit = AuditActivities(deps.pool, audit_key=deps.audit_key)
    processor = deps.processor or HttpProcessorClient("http://127.0.0.1:8010")
    screen = AccountScreen(deps.pool, processor, deps.bank_fingerprint_key, audit_key=deps.audit_key)
    payments = PaymentActivities(deps.pool, processor, screen, audit_key=deps.audit_key, metrics=deps.metrics)
    settlement = SettlementActivities(
        deps.pool, processor, deps.senders, deps.lifecycle, audit_key=deps.audit_key
    )
    reconciliation = ReconciliationActivities(
        deps.pool,
        processor,
        audit_key=deps.audit_key,
        return_window_days=deps.lifecycle.return_window_days,
    )
    bank_accounts = BankAccountActivities(screen)
    nacha_jobs: list[Callable[..., Any]] = []
    if deps.nacha is not None:
        nacha = NachaActivities(
            deps.pool,
            deps.nacha.config,
            deps.nacha.sealer,
            deps.senders,
            audit_key=deps.audit_key,
            staff_notify_email=deps.lifecycle.staff_notify_email,
        )
        nacha_jobs = [nacha.originate_nacha_file, nacha.ingest_nacha_inbound]
    # Without WEBHOOK_SECRET_KEYS (deps built by hand) a one-off key: secrets sealed elsewhere
    # fail to open, and their tries are retried, never sent unsigned.
    box = deps.webhook_box or SecretBox([("ephemeral", secrets.token_bytes(32))])
    webhooks = WebhookDeliveryActivities(
        deps.pool, box, deps.webhooks, deps.senders, resolver=deps.webhook_resolver
    )
    webhook_relay = WebhookRelayActivities(deps.pool)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[
            PayInvoiceWorkflow,
            AchPaymentWorkflow,
            ProcessorReconciliationWorkflow,
            NachaOriginationWorkflow,
            NachaInboundWorkflow,
            WebhookDeliveryWorkflow,
            WebhookSweepWorkflow,
        ],
        activities=[
            *nacha_jobs,
            payer.resolve_payer,
            otp.send_code,
            otp.check_code,
            payments.submit_debit,
            payments.submit_screened_debit,
            audit.append_audit_event,
            settlement.load_ach_payment,
            settlement.begin_payment_lifecycle,
            bank_accounts.screen_bank_account,
            settlement.apply_payment_outcome,
            settlement.notify_payment_outcome,
            settlement.record_late_processor_event,
            settlement.check_debit_status,
            settlement.alert_payment_overdue,
            reconciliation.reconcile_processor,
            webhooks.deliver_webhook,
            webhook_relay.sweep_webhook_events,
        ],
        graceful_shutdown_timeout=graceful_shutdown,
        max_cached_workflows=max_cached_workflows,
        workflow_runner=WORKFLOW_RUNNER,
    )


async def run_until_signalled(worker: Worker, stop: asyncio.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or `stop`), then let in-flight activities finish, bounded."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
    async with worker:
        log.info("worker polling task queue %s", worker.task_queue)
        await stop.wait()
        log.info("shutting down: waiting for in-flight activities")
