"""Every recorded history replays against the current workflow code; a changed workflow is caught.

The histories under tests/histories/ were written by `python -m tests.histories.record` with the
test codec key, so they are replayed through the one data converter exactly as a worker reads
them. A failure here means the change breaks running attempts: see docs/versioning.md.
"""

import base64
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from domain.ach_payment import AchPaymentInput, AchPaymentOutcome, DebitStatusRequest
from domain.attempt import AttemptOutcome, PayInvoiceInput
from domain.audit import AuditEventType
from domain.status import PaymentStatus
from infra.converter import build_data_converter
from starters.attempt_reads import status_changes
from starters.cli.replay import ALL_WORKFLOWS, file_sources, replay_sources, run_replay
from tests.support import test_settings as settings_for_tests
from workflows.ach_payment import AchPaymentWorkflow
from workflows.pay_invoice import PayInvoiceWorkflow

HISTORY_DIR = Path(__file__).with_name("histories")
HISTORIES = sorted(HISTORY_DIR.glob("*.json"))
CONVERTER = build_data_converter(settings_for_tests().codec_key_ring())
REQUIRED = {
    "paid_by_sms",
    "paid_by_email_after_resend_and_switch",
    "locked",
    "expired",
    "deposit",
    "declined",
}
# The payment follower and reconciliation (SPEC §9, issue 20): tests/histories/record_followers.py.
FOLLOWER_HISTORIES = sorted((HISTORY_DIR / "followers").glob("*.json"))
FOLLOWERS_REQUIRED = {
    "ach_payment_settled",
    "ach_payment_failed",
    "ach_payment_returned_late",
    "ach_payment_duplicate_and_out_of_order",
    "ach_payment_notice_bounces",
    "ach_payment_processor_outage",
    "ach_payment_restarted_by_reconcile",
    "reconciliation_restarts_a_follower",
}


def load(name: str) -> WorkflowHistory:
    return WorkflowHistory.from_json(name, (HISTORY_DIR / f"{name}.json").read_text())


@workflow.defn(name="PayInvoiceWorkflow", sandboxed=False)
class AuditsTheOpeningAgain(PayInvoiceWorkflow):
    """A plausible "extra safety": the workflow audits ATTEMPT_STARTED itself again after the
    resolution wrote it, so one activity call appears where histories have none."""

    @workflow.run
    async def run(self, input: PayInvoiceInput) -> AttemptOutcome:
        return await super().run(input)

    async def _resolve(self, input: PayInvoiceInput) -> bool:
        resolved: bool = await super()._resolve(input)
        if resolved:
            await self._record(AuditEventType.ATTEMPT_STARTED, client=input.opened_by)
        return resolved


@workflow.defn(name="AchPaymentWorkflow", sandboxed=False)
class AsksTheProcessorFirst(AchPaymentWorkflow):
    """A plausible change to the follower: ask the processor before loading, unguarded."""

    @workflow.run
    async def run(self, input: AchPaymentInput) -> AchPaymentOutcome:
        await workflow.execute_activity(
            "check_debit_status",
            DebitStatusRequest(payment_id=input.payment_id, debit_id="?"),
            start_to_close_timeout=timedelta(seconds=5),
        )
        return await super().run(input)


async def test_a_changed_follower_is_caught() -> None:
    replayer = Replayer(workflows=[AsksTheProcessorFirst], data_converter=CONVERTER)
    history = WorkflowHistory.from_json(
        "s", (HISTORY_DIR / "followers" / "ach_payment_settled.json").read_text()
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert isinstance(result.replay_failure, workflow.NondeterminismError)


def test_every_required_outcome_is_recorded() -> None:
    assert {p.stem for p in HISTORIES} >= REQUIRED
    assert {p.stem for p in FOLLOWER_HISTORIES} >= FOLLOWERS_REQUIRED


@pytest.mark.parametrize("path", HISTORIES + FOLLOWER_HISTORIES, ids=lambda p: p.stem)
async def test_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=list(ALL_WORKFLOWS), data_converter=CONVERTER)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


async def test_replay_command_replays_the_whole_folder() -> None:
    lines = await run_replay(settings_for_tests(), HISTORIES + FOLLOWER_HISTORIES, None, None, 100)
    assert [line.label for line in lines] == [str(p) for p in HISTORIES + FOLLOWER_HISTORIES]
    assert all(line.ok for line in lines), [line.render() for line in lines if not line.ok]


async def test_a_changed_activity_sequence_is_caught() -> None:
    replayer = Replayer(workflows=[AuditsTheOpeningAgain], data_converter=CONVERTER)
    result = await replayer.replay_workflow(load("paid_by_sms"), raise_on_replay_failure=False)
    assert isinstance(result.replay_failure, workflow.NondeterminismError)

    lines = await replay_sources(
        file_sources([HISTORY_DIR / "deposit.json"]), CONVERTER, workflows=[AuditsTheOpeningAgain]
    )
    assert len(lines) == 1 and not lines[0].ok and lines[0].nondeterministic
    assert lines[0].render().startswith("FAIL  ") and "non-deterministic" in lines[0].render()


async def test_a_history_under_a_retired_key_is_reported_not_crashed() -> None:
    other = settings_for_tests(codec_keys="other:" + base64.b64encode(b"x" * 32).decode())
    lines = await run_replay(other, [HISTORY_DIR / "locked.json"], None, None, 1)
    assert len(lines) == 1 and not lines[0].ok
    assert "test1" in (lines[0].error or "")


def test_states_of_a_run_come_from_its_search_attribute_upserts() -> None:
    s = PaymentStatus
    assert [st for _, st in status_changes(load("paid_by_sms"))] == [
        s.RESOLVING_PAYER,
        s.CHOOSING_CHANNEL,
        s.AWAITING_CODE,
        s.AWAITING_PAYMENT,
        s.SUBMITTING,
        s.PAID,
    ]
    assert [st for _, st in status_changes(load("expired"))][-1] is s.EXPIRED
    assert [st for _, st in status_changes(load("deposit"))] == [
        s.RESOLVING_PAYER,
        s.AWAITING_PAYMENT,
        s.SUBMITTING,
        s.PAID,
    ]
