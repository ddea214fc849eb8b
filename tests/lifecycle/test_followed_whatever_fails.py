"""A payment is followed to its end, whatever fails (SPEC §9, issue 20 findings 1, 3, 4, 6 and 7).

Each test is the issue's own scenario: a bounced staff notice, a processor outage longer than the
old retry budget, a Temporal Cancel, a follower started before the debit's answer was recorded,
an overdue payment, a forged stored event and a forged signal, 6,000 unknown events ahead of a real
one, and a follower gone missing that reconciliation restarts.
"""

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from domain.ach_payment import AchPaymentInput, AchStatus, ProcessorEvent, ach_workflow_id
from domain.channels import Channel
from infra.providers.delivery.base import CodeSender
from infra.providers.delivery.console import ConsoleSender
from infra.providers.delivery.sendgrid_email import SendGridEmailSender
from tests.conftest import HarnessFactory
from tests.lifecycle.conftest import STAFF_EMAIL, insert_accepted_payment, lifecycle_config
from tests.lifecycle.services import wait_for
from tests.support import Harness, create_invoice, outbox_messages, test_settings
from tests.workflow.steps import audit_rows, unique_email
from tools.standins.processor import ScriptedProcessor
from tools.standins.providers import Behaviour, Captured, Reply, SendGridStandIn
from workers.schedules import reconcile_now
from workers.worker import WorkerDeps, build_worker
from workflows.ach_payment import AchPaymentWorkflow


class RefusesTheStaffAddress(SendGridStandIn):
    """SendGrid answering 400 for the staff address, as it does for an address it will not mail."""

    def default_reply(self, captured: Captured) -> Behaviour:
        if captured.path == "/v3/mail/send" and STAFF_EMAIL in captured.body.decode():
            return Reply.json(
                400,
                {
                    "errors": [
                        {"message": "Does not contain a valid address.", "field": "personalizations.0.to"}
                    ]
                },
            )
        return super().default_reply(captured)


@contextlib.asynccontextmanager
async def follower_worker(
    env: WorkflowEnvironment,
    pool: asyncpg.Pool,
    processor: ScriptedProcessor,
    *,
    senders: dict[Channel, CodeSender] | None = None,
    **config: object,
) -> AsyncIterator[str]:
    console = ConsoleSender(pool)
    deps = WorkerDeps(
        pool=pool,
        senders=senders or {Channel.EMAIL: console, Channel.SMS: console},
        otp_hmac_key=b"otp-hmac-test-key",
        audit_key=test_settings().audit_key(),
        lifecycle=lifecycle_config(**config),
        processor=processor,
    )
    task_queue = f"follow-{uuid.uuid4().hex[:12]}"
    async with build_worker(env.client, task_queue, deps, graceful_shutdown=timedelta(seconds=5)):
        yield task_queue


async def _state(pool: asyncpg.Pool, payment_id: str) -> tuple[str, str | None, str, int]:
    row = await pool.fetchrow(
        "SELECT p.status, p.return_code, i.status AS inv, i.balance_cents FROM payments p"
        " JOIN invoices i ON i.id = p.invoice_id WHERE p.id = $1",
        payment_id,
    )
    return (row["status"], row["return_code"], row["inv"], row["balance_cents"])


async def _loaded(handle: Any) -> bool:
    """The follower's first activity (loading the payment) has completed."""
    history = await handle.fetch_history()
    return any(e.HasField("activity_task_completed_event_attributes") for e in history.events)


def _debit(payment_id: str) -> str:
    return f"dbt_{payment_id.lower()}"


async def _events_for(pool: asyncpg.Pool, payment_id: str, invoice_id: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT type FROM events WHERE data->'object'->>'payment_id' = $1 OR data->'object'->>'id' = $2"
        " ORDER BY seq",
        payment_id,
        invoice_id,
    )
    return [r["type"] for r in rows]


# ---- Finding 1: a bounced notice, an outage, a Cancel never end the follower --------------------


@pytest.mark.timeskipping
async def test_a_staff_notice_sendgrid_refuses_is_audited_and_the_follower_goes_on(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool
) -> None:
    sendgrid = RefusesTheStaffAddress().start()
    try:
        email = SendGridEmailSender(
            api_key="SG.test-key", from_email="billing@example.com", host=sendgrid.url
        )
        console = ConsoleSender(db_pool)
        processor = ScriptedProcessor()
        senders: dict[Channel, CodeSender] = {Channel.EMAIL: email, Channel.SMS: console}
        async with follower_worker(time_skipping_env, db_pool, processor, senders=senders) as task_queue:
            inv = await create_invoice(db_pool, amount_cents=48000, email=unique_email())
            payment_id = await insert_accepted_payment(db_pool, inv, processor=processor)
            failed = processor.move(_debit(payment_id), "failed", "R01", payment_id=payment_id)
            handle = await time_skipping_env.client.start_workflow(
                AchPaymentWorkflow.run,
                AchPaymentInput(payment_id=payment_id),
                id=ach_workflow_id(payment_id),
                task_queue=task_queue,
                start_signal="processor_event",
                start_signal_args=[failed],
            )
            outcome = await handle.result()  # old code: WorkflowFailureError (PermanentDeliveryFailure)
        assert (outcome.status, outcome.return_code) == (AchStatus.FAILED, "R01")
        assert (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED
        assert await _state(db_pool, payment_id) == ("failed", "R01", "open", 48000)
        rows = await audit_rows(db_pool, inv.invoice_id)
        assert [r["event_type"] for r in rows] == ["PAYMENT_FAILED", "PAYMENT_NOTICE_FAILED"]
        bounced = rows[1]
        assert bounced["details"]["recipient"] == "staff"
        assert bounced["destination"] == "s•••@example.com"
        assert "400" in bounced["details"]["reason"]
        # The payer was still told.
        sent_to = [json.loads(r.body)["personalizations"][0]["to"][0]["email"] for r in sendgrid.requests]
        assert inv.email in sent_to and STAFF_EMAIL in sent_to
        # SPEC §12: one payment.failed and one invoice.reopened, in the effect's transaction.
        assert await _events_for(db_pool, payment_id, inv.invoice_id) == [
            "payment.failed",
            "invoice.reopened",
        ]
    finally:
        sendgrid.stop()


@pytest.mark.timeskipping
async def test_a_processor_outage_longer_than_the_old_retry_budget_is_waited_out(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool
) -> None:
    processor = ScriptedProcessor()
    async with follower_worker(time_skipping_env, db_pool, processor) as task_queue:
        inv = await create_invoice(db_pool, amount_cents=7000, email=unique_email())
        payment_id = await insert_accepted_payment(
            db_pool, inv, processor=processor, expected_settlement_at=datetime.now(UTC) + timedelta(hours=1)
        )
        processor.move(_debit(payment_id), "settled")  # its webhook was lost
        processor.outage(60)  # the old budget was 50 attempts (about 3.5 h)
        handle = await time_skipping_env.client.start_workflow(
            AchPaymentWorkflow.run,
            AchPaymentInput(payment_id=payment_id),
            id=ach_workflow_id(payment_id),
            task_queue=task_queue,
        )
        outcome = await handle.result()  # old code: WorkflowFailureError after 50 failed checks
    assert (outcome.status, outcome.window_closed) == (AchStatus.SETTLED, True)
    assert processor.lookups > 60
    assert await _state(db_pool, payment_id) == ("settled", None, "paid", 0)
    assert await _events_for(db_pool, payment_id, inv.invoice_id) == ["payment.settled", "invoice.paid"]


@pytest.mark.timeskipping
async def test_a_cancel_request_does_not_stop_the_follower(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool
) -> None:
    processor = ScriptedProcessor()
    async with follower_worker(time_skipping_env, db_pool, processor) as task_queue:
        inv = await create_invoice(db_pool, amount_cents=3100, email=unique_email())
        payment_id = await insert_accepted_payment(db_pool, inv, processor=processor)
        handle = await time_skipping_env.client.start_workflow(
            AchPaymentWorkflow.run,
            AchPaymentInput(payment_id=payment_id),
            id=ach_workflow_id(payment_id),
            task_queue=task_queue,
        )
        await wait_for(
            lambda: handle.query(AchPaymentWorkflow.status), lambda s: s is not None, what="loaded"
        )
        await handle.cancel()
        settled = processor.move(_debit(payment_id), "settled", payment_id=payment_id)
        await handle.signal(AchPaymentWorkflow.processor_event, settled)  # old code: the run is canceled
        await wait_for(lambda: _state(db_pool, payment_id), lambda s: s[0] == "settled", what="settled")
        assert (await handle.query(AchPaymentWorkflow.status)).status is AchStatus.SETTLED
        described = await handle.describe()
        assert described.status is WorkflowExecutionStatus.RUNNING
        await handle.terminate("test over")


async def test_stored_status_never_raises_for_a_status_it_meets() -> None:
    from activities.settlement import stored_status

    assert stored_status("submitting") is AchStatus.PROCESSING
    assert stored_status("accepted") is AchStatus.PROCESSING
    assert stored_status("declined") is AchStatus.FAILED  # final: the follower never moves it
    assert stored_status("something-new") is AchStatus.FAILED


# ---- Finding 7: the debit id learned late, growing polls, one overdue alert -----------------------


@pytest.mark.timeskipping
async def test_a_follower_started_before_the_debit_was_recorded_still_asks_the_processor(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool
) -> None:
    processor = ScriptedProcessor()
    async with follower_worker(time_skipping_env, db_pool, processor) as task_queue:
        inv = await create_invoice(db_pool, amount_cents=2500, email=unique_email())
        payment_id = await insert_accepted_payment(
            db_pool, inv, processor=processor, expected_settlement_at=datetime.now(UTC) + timedelta(hours=2)
        )
        # The webhook's signal-with-start outran the debit's answer: no debit id on the row yet.
        await db_pool.execute(
            "UPDATE payments SET processor_reference = NULL, status = 'submitting' WHERE id = $1", payment_id
        )
        early = processor.move(_debit(payment_id), "processing", payment_id=payment_id)
        handle = await time_skipping_env.client.start_workflow(
            AchPaymentWorkflow.run,
            AchPaymentInput(payment_id=payment_id),
            id=ach_workflow_id(payment_id),
            task_queue=task_queue,
            start_signal="processor_event",
            start_signal_args=[early],
        )
        await wait_for(
            lambda: handle.query(AchPaymentWorkflow.status), lambda s: s is not None, what="loaded"
        )
        await db_pool.execute(
            "UPDATE payments SET processor_reference = $2, status = 'processing' WHERE id = $1",
            payment_id,
            _debit(payment_id),
        )
        processor.move(_debit(payment_id), "settled")  # and its webhook is lost
        await time_skipping_env.sleep(timedelta(hours=3))
        # Old code: the follower never learns the debit id and never asks; still processing.
        await wait_for(
            lambda: _state(db_pool, payment_id), lambda s: s[0] == "settled", what="asked and settled"
        )
        await handle.terminate("test over")


@pytest.mark.timeskipping
async def test_an_overdue_payment_alerts_staff_once_and_polls_less_often(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool
) -> None:
    processor = ScriptedProcessor()
    async with follower_worker(time_skipping_env, db_pool, processor) as task_queue:
        inv = await create_invoice(db_pool, amount_cents=2600, email=unique_email())
        payment_id = await insert_accepted_payment(
            db_pool, inv, processor=processor, expected_settlement_at=datetime.now(UTC) + timedelta(hours=1)
        )
        handle = await time_skipping_env.client.start_workflow(
            AchPaymentWorkflow.run,
            AchPaymentInput(payment_id=payment_id),
            id=ach_workflow_id(payment_id),
            task_queue=task_queue,
        )
        await wait_for(
            lambda: handle.query(AchPaymentWorkflow.status), lambda s: s is not None, what="loaded"
        )
        await time_skipping_env.sleep(timedelta(days=8))
        rows = await wait_for(
            lambda: audit_rows(db_pool, inv.invoice_id),
            lambda r: any(x["event_type"] == "PAYMENT_SETTLEMENT_OVERDUE" for x in r),
            what="overdue alert",
        )
        assert [r["event_type"] for r in rows] == ["PAYMENT_SETTLEMENT_OVERDUE"]
        staff = [m for m in await outbox_messages(db_pool, STAFF_EMAIL) if payment_id in m["body"]]
        assert len(staff) == 1 and "overdue" in staff[0]["subject"].lower()
        # Hourly in lockstep would be ~190 look-ups over 8 days; growing to daily it is a handful.
        assert processor.lookups < 20
        assert await _state(db_pool, payment_id) == ("processing", None, "pending", 0)
        await handle.terminate("test over")


@pytest.mark.timeskipping
async def test_a_long_follower_continues_as_new_before_its_history_bound(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool
) -> None:
    processor = ScriptedProcessor()
    async with follower_worker(
        time_skipping_env, db_pool, processor, history_bound=30, status_check_seconds=600
    ) as task_queue:
        inv = await create_invoice(db_pool, amount_cents=2700, email=unique_email())
        payment_id = await insert_accepted_payment(
            db_pool, inv, processor=processor, expected_settlement_at=datetime.now(UTC) + timedelta(hours=1)
        )
        first = await time_skipping_env.client.start_workflow(
            AchPaymentWorkflow.run,
            AchPaymentInput(payment_id=payment_id),
            id=ach_workflow_id(payment_id),
            task_queue=task_queue,
        )
        await time_skipping_env.sleep(timedelta(days=5))  # polls: 1 h after the date, then 10 min doubling
        first_run = time_skipping_env.client.get_workflow_handle(
            ach_workflow_id(payment_id), run_id=first.result_run_id
        )
        history = await first_run.fetch_history()
        assert history.events[-1].HasField("workflow_execution_continued_as_new_event_attributes")
        assert len(history.events) < 60  # the bound (30) plus the poll it was in
        processor.move(_debit(payment_id), "settled", publish=False)
        await time_skipping_env.sleep(timedelta(days=2))
        await wait_for(lambda: _state(db_pool, payment_id), lambda s: s[0] == "settled", what="settled")
        latest = time_skipping_env.client.get_workflow_handle(ach_workflow_id(payment_id))
        assert (await latest.describe()).run_id != first.result_run_id
        await latest.terminate("test over")


# ---- Findings 3, 4 and 6: reconciliation ----------------------------------------------------------


@contextlib.asynccontextmanager
async def scripted_harness(
    harness_factory: HarnessFactory,
) -> AsyncIterator[tuple[Harness, ScriptedProcessor]]:
    processor = ScriptedProcessor()

    def with_processor(deps: Any) -> Any:
        deps.lifecycle = lifecycle_config()
        deps.processor = processor
        return deps

    async with harness_factory(wrap_deps=with_processor) as h:
        yield h, processor


async def _follow(h: Harness, payment_id: str, event: ProcessorEvent | None = None) -> Any:
    extra: dict[str, Any] = {"start_signal": "processor_event", "start_signal_args": [event]} if event else {}
    return await h.client.start_workflow(
        AchPaymentWorkflow.run,
        AchPaymentInput(payment_id=payment_id),
        id=ach_workflow_id(payment_id),
        task_queue=h.task_queue,
        **extra,
    )


async def _signal_handled(pool: asyncpg.Pool, payment_id: str, event_id: str) -> bool:
    if (await _state(pool, payment_id))[0] != "processing":
        return True  # it changed the payment (what must not happen)
    return bool(await pool.fetchval("SELECT 1 FROM refused_processor_events WHERE event_id = $1", event_id))


async def test_a_forged_row_and_a_forged_signal_change_nothing_and_are_reported(
    harness_factory: HarnessFactory,
) -> None:
    async with scripted_harness(harness_factory) as (h, processor):
        inv_a = await create_invoice(h.pool, amount_cents=5000, email=unique_email())
        settled_payment = await insert_accepted_payment(h.pool, inv_a, processor=processor)
        real = processor.move(_debit(settled_payment), "settled", payment_id=settled_payment)
        await _follow(h, settled_payment, real)
        await wait_for(lambda: _state(h.pool, settled_payment), lambda s: s[0] == "settled", what="settled")

        # Someone with the app's database role writes a return the processor never sent.
        forged_row = ProcessorEvent(
            id=f"evt_forged_{uuid.uuid4().hex}",
            type="debit.returned",
            debit_id=_debit(settled_payment),
            payment_id=settled_payment,
            status="returned",
            return_code="R10",
            occurred_at=datetime.now(UTC),
        )
        await h.pool.execute(
            "INSERT INTO processor_events (id, processor, type, debit_id, payment_id, payload, source)"
            " VALUES ($1, 'sandbox', $2, $3, $4, $5::jsonb, 'reconciliation')",
            forged_row.id,
            forged_row.type,
            forged_row.debit_id,
            settled_payment,
            json.dumps(forged_row.model_dump(mode="json")),
        )
        # Someone with the Temporal client signals a failure the processor never sent.
        inv_b = await create_invoice(h.pool, amount_cents=6000, email=unique_email())
        processing_payment = await insert_accepted_payment(h.pool, inv_b, processor=processor)
        forged_signal = ProcessorEvent(
            id=f"evt_forged_{uuid.uuid4().hex}",
            type="debit.failed",
            debit_id=_debit(processing_payment),
            payment_id=processing_payment,
            status="failed",
            return_code="R01",
            occurred_at=datetime.now(UTC),
        )
        await _follow(h, processing_payment, forged_signal)

        first = await reconcile_now(h.client, h.task_queue)
        assert forged_row.id in {d.event_id for d in first.delivered}
        # Handled by the follower (old code: applied, reopening the paid invoice; failing the other).
        await wait_for(
            lambda: h.pool.fetchval("SELECT applied FROM processor_events WHERE id = $1", forged_row.id),
            lambda applied: applied is not None,
            what="forged row handled",
        )
        assert await _state(h.pool, settled_payment) == ("settled", None, "paid", 0)
        await wait_for(
            lambda: _signal_handled(h.pool, processing_payment, forged_signal.id), bool, what="signal handled"
        )
        assert await _state(h.pool, processing_payment) == ("processing", None, "pending", 0)
        second = await reconcile_now(h.client, h.task_queue)
        reported = {r.event_id: r for r in first.refused + second.refused}
        assert reported[forged_row.id].source == "reconciliation"
        assert reported[forged_signal.id].source == "signal"
        assert "processor says the debit is settled" in reported[forged_row.id].reason
        assert await _state(h.pool, settled_payment) == ("settled", None, "paid", 0)
        assert await _state(h.pool, processing_payment) == ("processing", None, "pending", 0)
        assert [r["event_type"] for r in await audit_rows(h.pool, inv_a.invoice_id)] == ["PAYMENT_SETTLED"]
        assert await audit_rows(h.pool, inv_b.invoice_id) == []
        assert not await outbox_messages(h.pool, inv_a.email or "")
        # Handled: the forged row is not delivered again.
        assert forged_row.id not in {d.event_id for d in second.delivered}


async def test_six_thousand_unknown_events_never_hold_up_a_real_one(harness_factory: HarnessFactory) -> None:
    async with scripted_harness(harness_factory) as (h, processor):
        await h.pool.execute(
            "INSERT INTO processor_events (id, processor, type, debit_id, payload, source, received_at)"
            " SELECT 'evt_unknown_' || $1 || '_' || n, 'sandbox', 'debit.settled', 'dbt_unknown_' || n,"
            "  jsonb_build_object('id', 'evt_unknown_' || $1 || '_' || n, 'type', 'debit.settled',"
            "   'debit_id', 'dbt_unknown_' || n, 'status', 'settled', 'occurred_at', now()),"
            "  'webhook', now() - interval '1 hour' + n * interval '1 millisecond'"
            " FROM generate_series(1, 6000) n",
            uuid.uuid4().hex[:8],
        )
        inv = await create_invoice(h.pool, amount_cents=8000, email=unique_email())
        payment_id = await insert_accepted_payment(h.pool, inv, processor=processor)
        await _follow(h, payment_id)
        missed = processor.move(_debit(payment_id), "settled", payment_id=payment_id)
        # The webhook stored it, then could not signal (the workflow service was down).
        await h.pool.execute(
            "INSERT INTO processor_events (id, processor, type, debit_id, payment_id, payload, source)"
            " VALUES ($1, 'sandbox', $2, $3, $4, $5::jsonb, 'webhook')",
            missed.id,
            missed.type,
            missed.debit_id,
            payment_id,
            json.dumps(missed.model_dump(mode="json")),
        )
        report = await reconcile_now(h.client, h.task_queue)
        assert (missed.id, payment_id) in {(d.event_id, d.payment_id) for d in report.delivered}
        assert report.unknown_event_count >= 6000 and len(report.unknown_events) <= 50
        await wait_for(lambda: _state(h.pool, payment_id), lambda s: s[0] == "settled", what="settled")
        assert (
            await h.pool.fetchval("SELECT applied FROM processor_events WHERE id = $1", missed.id)
            == "settled"
        )
        unmarked = await h.pool.fetchval(
            "SELECT count(*) FROM processor_events WHERE id LIKE 'evt_unknown_%' AND unmatched_at IS NULL"
        )
        assert unmarked == 0


async def test_reconcile_restarts_a_missing_follower_and_repairs_from_the_processor(
    harness_factory: HarnessFactory,
) -> None:
    async with scripted_harness(harness_factory) as (h, processor):
        inv = await create_invoice(h.pool, amount_cents=9100, email=unique_email())
        payment_id = await insert_accepted_payment(h.pool, inv, processor=processor)
        handle = await _follow(h, payment_id)
        await wait_for(
            lambda: handle.query(AchPaymentWorkflow.status), lambda s: s is not None, what="loaded"
        )
        await handle.terminate("the runbook said so")  # the follower is gone

        report = await reconcile_now(h.client, h.task_queue)  # old code: no follower is restarted
        assert payment_id in report.followers_restarted
        restarted = await h.client.get_workflow_handle(ach_workflow_id(payment_id)).describe()
        assert (
            restarted.status is WorkflowExecutionStatus.RUNNING and restarted.run_id != handle.result_run_id
        )

        # The processor settles it, and neither a webhook nor its event feed says so.
        processor.move(_debit(payment_id), "settled", publish=False)
        report = await reconcile_now(h.client, h.task_queue)
        assert payment_id in {m.payment_id for m in report.repaired}
        await wait_for(lambda: _state(h.pool, payment_id), lambda s: s[0] == "settled", what="repaired")
        described = await h.client.get_workflow_handle(ach_workflow_id(payment_id)).describe()
        assert described.status is WorkflowExecutionStatus.RUNNING  # following the return window now

        again = await reconcile_now(h.client, h.task_queue)
        assert payment_id not in again.followers_restarted
        assert payment_id not in {m.payment_id for m in again.repaired + again.mismatches}


async def test_ops_stuck_lists_missing_failed_and_retrying_followers_with_what_to_do(
    harness_factory: HarnessFactory,
) -> None:
    from starters.cli.stuck_followers import find_stuck_followers

    async with scripted_harness(harness_factory) as (h, processor):
        inv = await create_invoice(h.pool, amount_cents=4100, email=unique_email())
        missing = await insert_accepted_payment(h.pool, inv, processor=processor)  # nobody follows it

        async def another_invoice() -> Any:  # one open debit per invoice; the same customer
            other = await create_invoice(h.pool, amount_cents=4100, email=unique_email())
            await h.pool.execute(
                "UPDATE invoices SET customer_id = $2 WHERE id = $1", other.invoice_id, inv.customer_id
            )
            return replace(other, customer_id=inv.customer_id)

        ended = await insert_accepted_payment(h.pool, await another_invoice(), processor=processor)
        ended_handle = await _follow(h, ended)
        await ended_handle.terminate("gone")
        retrying = await insert_accepted_payment(h.pool, await another_invoice(), processor=processor)
        processor.outage(10_000)  # every look-up fails from now on
        await _follow(h, retrying, processor.move(_debit(retrying), "settled", payment_id=retrying))

        async def listed() -> dict[str, Any]:
            found = await find_stuck_followers(
                h.client, h.pool, return_window_days=60, customer_id=inv.customer_id, limit=50
            )
            return {f.payment_id: f for f in found}

        found = await wait_for(
            listed, lambda f: {missing, ended, retrying} <= set(f), what="three stuck followers", timeout=60
        )
        assert found[missing].problem == "missing" and "ops reconcile" in found[missing].what_to_do
        assert found[ended].problem == "terminated"
        assert found[retrying].problem == "activity_failing"
        assert "apply_payment_outcome" in found[retrying].detail
        assert "retries by itself" in found[retrying].what_to_do
        await h.client.get_workflow_handle(ach_workflow_id(retrying)).terminate("test over")


async def test_an_event_signalled_but_never_applied_is_delivered_again(
    harness_factory: HarnessFactory,
) -> None:
    """Finding 1's aftermath: the webhook marked the event delivered, then the follower died."""
    async with scripted_harness(harness_factory) as (h, processor):
        inv = await create_invoice(h.pool, amount_cents=6600, email=unique_email())
        payment_id = await insert_accepted_payment(h.pool, inv, processor=processor)
        failed_event = processor.move(
            _debit(payment_id), "failed", "R01", payment_id=payment_id, publish=False
        )
        await h.pool.execute(
            "INSERT INTO processor_events (id, processor, type, debit_id, payment_id, payload, source,"
            " delivered_at) VALUES ($1, 'sandbox', $2, $3, $4, $5::jsonb, 'webhook', now())",
            failed_event.id,
            failed_event.type,
            failed_event.debit_id,
            payment_id,
            json.dumps(failed_event.model_dump(mode="json")),
        )
        report = await reconcile_now(h.client, h.task_queue)  # old code: only delivered_at IS NULL
        assert failed_event.id in {d.event_id for d in report.delivered}
        await wait_for(lambda: _state(h.pool, payment_id), lambda s: s[0] == "failed", what="failed")
        assert await _state(h.pool, payment_id) == ("failed", "R01", "open", 6600)
        assert (
            await h.pool.fetchval("SELECT applied FROM processor_events WHERE id = $1", failed_event.id)
            == "failed"
        )
