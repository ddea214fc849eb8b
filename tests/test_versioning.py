"""The versioning rule of docs/versioning.md, proven on recorded and live histories.

The change under test is a new step at the start of an attempt (screening the payer with a new
activity). Shipped bare, it breaks every attempt already running; behind `workflow.patched` the
old histories replay untouched while new attempts take the new path; `workflow.deprecate_patch`
is safe only once no pre-patch attempt can still be replayed.
"""

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import activity, workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, Worker

from activities.audit import AuditActivities
from activities.bank_accounts import AccountScreen, BankAccountActivities
from activities.payer import PayerActivities
from activities.payments import PaymentActivities
from activities.settlement import LifecycleConfig, SettlementActivities
from domain.attempt import AttemptOutcome, ClientContext, PayInvoiceInput, PaymentDetails, SubmitPaymentInput
from domain.policy import PaymentMethod
from domain.status import PaymentStatus
from infra.converter import build_data_converter
from infra.providers.processor.client import HttpProcessorClient
from starters.workflow_client import AttemptGateway
from tests.support import GOOD_ACCOUNT, GOOD_ROUTING, Harness, create_invoice
from tests.support import test_settings as settings_for_tests
from workflows.pay_invoice import PayInvoiceWorkflow

HISTORIES = sorted(Path(__file__).with_name("histories").glob("*.json"))
CONVERTER = build_data_converter(settings_for_tests().codec_key_ring())
PATCH_ID = "screen-payer"
SCREEN_TIMEOUT = timedelta(seconds=10)
BANK = PaymentDetails(
    method=PaymentMethod.ECHECK,
    account_holder="Designated Payer",
    routing_number=GOOD_ROUTING,
    account_number=GOOD_ACCOUNT,
    account_type="checking",
)


@activity.defn(name="screen_payer")
async def screen_payer(invoice_id: str) -> bool:
    return True


@workflow.defn(name="PayInvoiceWorkflow", sandboxed=False)
class ScreeningUnguarded(PayInvoiceWorkflow):
    """The new step, shipped as if no attempt were running."""

    @workflow.run
    async def run(self, input: PayInvoiceInput) -> AttemptOutcome:
        await workflow.execute_activity(
            "screen_payer", input.invoice_id, start_to_close_timeout=SCREEN_TIMEOUT
        )
        return await super().run(input)


@workflow.defn(name="PayInvoiceWorkflow", sandboxed=False)
class ScreeningPatched(PayInvoiceWorkflow):
    """Step 1 of the rule: new attempts screen the payer, attempts started before skip it."""

    @workflow.run
    async def run(self, input: PayInvoiceInput) -> AttemptOutcome:
        if workflow.patched(PATCH_ID):
            await workflow.execute_activity(
                "screen_payer", input.invoice_id, start_to_close_timeout=SCREEN_TIMEOUT
            )
        return await super().run(input)


@workflow.defn(name="PayInvoiceWorkflow", sandboxed=False)
class ScreeningDeprecated(PayInvoiceWorkflow):
    """Step 2: once no pre-patch attempt is left, the old branch goes and the marker is tolerated."""

    @workflow.run
    async def run(self, input: PayInvoiceInput) -> AttemptOutcome:
        workflow.deprecate_patch(PATCH_ID)
        await workflow.execute_activity(
            "screen_payer", input.invoice_id, start_to_close_timeout=SCREEN_TIMEOUT
        )
        return await super().run(input)


async def replay(history: WorkflowHistory, variant: type) -> BaseException | None:
    replayer = Replayer(workflows=[variant], data_converter=CONVERTER)
    return (await replayer.replay_workflow(history, raise_on_replay_failure=False)).replay_failure


def recorded(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_history_recorded_before_the_change_replays_with_the_patched_step(path: Path) -> None:
    assert await replay(recorded(path), ScreeningPatched) is None


async def test_the_same_step_without_a_patch_breaks_running_attempts() -> None:
    for path in HISTORIES:
        failure = await replay(recorded(path), ScreeningUnguarded)
        assert isinstance(failure, workflow.NondeterminismError), path.name


async def test_deprecating_the_patch_keeps_new_histories_and_drops_old_ones(harness: Harness) -> None:
    """A history written by the patched code replays after deprecation; a pre-patch one would not,
    which is why deprecation waits until no pre-patch attempt is open or inside retention."""
    pool, client = harness.pool, harness.client
    task_queue = f"versioning-{uuid.uuid4().hex[:10]}"
    processor = HttpProcessorClient(harness.settings.processor_sandbox_url, timeout=5)
    screen = AccountScreen(
        pool, processor, b"versioning-fingerprint-key", audit_key=harness.settings.audit_key()
    )
    payments = PaymentActivities(pool, processor, screen, audit_key=harness.settings.audit_key())
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[ScreeningPatched],
        activities=[
            screen_payer,
            PayerActivities(
                pool,
                policy=harness.settings.otp_policy,
                timers=harness.settings.attempt_timers(),
                audit_key=harness.settings.audit_key(),
            ).resolve_payer,
            AuditActivities(pool, audit_key=harness.settings.audit_key()).append_audit_event,
            payments.submit_debit,
            payments.submit_screened_debit,
            BankAccountActivities(screen).screen_bank_account,
            SettlementActivities(
                pool, processor, {}, LifecycleConfig(), audit_key=harness.settings.audit_key()
            ).begin_payment_lifecycle,
        ],
    )
    gateway = AttemptGateway(client, pool, harness.settings, task_queue=task_queue)
    inv = await create_invoice(pool, kind="deposit", amount_cents=20000, email=None, phone=None)
    ctx = ClientContext(actor="pytest")
    async with worker:
        opened = await gateway.open(inv.invoice_id, ctx)
        paid = await gateway.submit_payment(
            inv.invoice_id, opened.run_id, SubmitPaymentInput(details=BANK, client=ctx)
        )
        assert paid.status is PaymentStatus.PAID
        patched_history = await gateway.handle(inv.invoice_id, opened.run_id).fetch_history()

    assert await replay(patched_history, ScreeningPatched) is None
    assert await replay(patched_history, ScreeningDeprecated) is None
    assert isinstance(await replay(patched_history, PayInvoiceWorkflow), workflow.NondeterminismError)
    old = recorded(Path(__file__).with_name("histories") / "deposit.json")
    assert isinstance(await replay(old, ScreeningDeprecated), workflow.NondeterminismError)
