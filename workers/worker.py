"""Builds the PortalPay worker: activity classes get their pool and clients once, at start."""

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import asyncpg
from temporalio.client import Client
from temporalio.worker import Worker

from activities.audit import AuditActivities
from activities.bank_accounts import BankAccountActivities
from activities.otp import OtpActivities
from activities.payer import PayerActivities
from activities.payments import PaymentActivities
from activities.reconciliation import ReconciliationActivities
from activities.settlement import LifecycleConfig, SettlementActivities
from domain.channels import Channel
from infra.providers.delivery.base import CodeSender
from infra.providers.processor.client import HttpProcessorClient, ProcessorClient
from infra.providers.processor.sandbox import SandboxProcessor
from workflows.ach_payment import AchPaymentWorkflow
from workflows.pay_invoice import PayInvoiceWorkflow
from workflows.reconciliation import ProcessorReconciliationWorkflow

log = logging.getLogger(__name__)


@dataclass
class WorkerDeps:
    pool: asyncpg.Pool
    senders: Mapping[Channel, CodeSender]
    otp_hmac_key: bytes
    company_name: str = "PortalPay"
    metrics: object | None = None
    # SPEC §9: the processor service (HTTP) and the lifecycle's settings.
    processor: ProcessorClient | None = None
    lifecycle: LifecycleConfig = field(default_factory=LifecycleConfig)
    bank_fingerprint_key: bytes = b"dev-only-bank-fingerprint-key"


def build_worker(
    client: Client,
    task_queue: str,
    deps: WorkerDeps,
    *,
    graceful_shutdown: timedelta = timedelta(seconds=30),
    max_cached_workflows: int = 1000,
) -> Worker:
    payer = PayerActivities(deps.pool)
    otp = OtpActivities(
        deps.pool,
        hmac_key=deps.otp_hmac_key,
        senders=deps.senders,
        company_name=deps.company_name,
        metrics=deps.metrics,
    )
    payments = PaymentActivities(deps.pool, SandboxProcessor(deps.pool), metrics=deps.metrics)
    audit = AuditActivities(deps.pool, metrics=deps.metrics)
    processor = deps.processor or HttpProcessorClient("http://127.0.0.1:8010")
    settlement = SettlementActivities(deps.pool, processor, deps.senders, deps.lifecycle)
    reconciliation = ReconciliationActivities(deps.pool, processor)
    bank_accounts = BankAccountActivities(deps.pool, processor, deps.bank_fingerprint_key)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[PayInvoiceWorkflow, AchPaymentWorkflow, ProcessorReconciliationWorkflow],
        activities=[
            payer.resolve_payer,
            otp.send_code,
            otp.check_code,
            payments.submit_debit,
            audit.append_audit_event,
            audit.record_lockout,
            settlement.load_ach_payment,
            settlement.begin_payment_lifecycle,
            bank_accounts.screen_bank_account,
            settlement.apply_payment_outcome,
            settlement.notify_payment_outcome,
            settlement.record_late_processor_event,
            settlement.check_debit_status,
            reconciliation.reconcile_processor,
        ],
        graceful_shutdown_timeout=graceful_shutdown,
        max_cached_workflows=max_cached_workflows,
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
