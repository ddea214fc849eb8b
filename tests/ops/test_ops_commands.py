"""`portalpay ops stuck`, `ops show` and `replay --workflow-id` on live attempts (dev server + PostgreSQL).

Visibility is eventually consistent, so listings are polled with a deadline; the commands
themselves run as the real `portalpay` executable (`ops stuck --json`, `replay`) or its
Typer app in-process (`run_cli_in_process`).
"""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from rich.console import Console

from domain.attempt import (
    CancelInput,
    ClientContext,
    PaymentDetails,
    RequestCodeInput,
    SubmitPaymentInput,
    VerifyCodeInput,
    workflow_id_for,
)
from domain.channels import Channel
from domain.policy import PaymentMethod
from domain.status import PaymentStatus
from starters.attempt_reads import find_stuck, load_attempt_report
from starters.cli.ops import render_report
from starters.cli.replay import run_replay
from tests import support
from tests.ops.cli_process import cli_env, invoice_with_unique_contacts, run_cli, run_cli_in_process
from tests.support import GOOD_ACCOUNT, GOOD_ROUTING, Harness, latest_code

T = TypeVar("T")
OPERATOR = ClientContext(actor="pytest-ops", ip="198.51.100.9")
BANK = PaymentDetails(
    method=PaymentMethod.ECHECK,
    account_holder="Designated Payer",
    routing_number=GOOD_ROUTING,
    account_number=GOOD_ACCOUNT,
    account_type="checking",
)


async def eventually(fetch: Callable[[], Awaitable[T]], ok: Callable[[T], bool], seconds: float = 20) -> T:
    deadline = time.monotonic() + seconds
    while True:
        value = await fetch()
        if ok(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.3)


async def parked_in_awaiting_code(h: Harness) -> tuple[support.TestInvoice, str]:
    inv = await invoice_with_unique_contacts(h.pool)
    run_id = (await h.gateway.open(inv.invoice_id, OPERATOR)).run_id
    await h.gateway.request_code(
        inv.invoice_id, run_id, RequestCodeInput(channel=Channel.SMS, client=OPERATOR)
    )
    return inv, run_id


async def paid_by_sms(h: Harness, inv: support.TestInvoice) -> str:
    run_id = (await h.gateway.open(inv.invoice_id, OPERATOR)).run_id
    await h.gateway.request_code(
        inv.invoice_id, run_id, RequestCodeInput(channel=Channel.SMS, client=OPERATOR)
    )
    code = await latest_code(h.pool, inv.phone or "")
    await h.gateway.verify_code(inv.invoice_id, run_id, VerifyCodeInput(code=code, client=OPERATOR))
    paid = await h.gateway.submit_payment(
        inv.invoice_id, run_id, SubmitPaymentInput(details=BANK, client=OPERATOR)
    )
    assert paid.status is PaymentStatus.PAID
    return run_id


async def test_stuck_finds_an_attempt_parked_in_awaiting_code_and_not_a_paid_one(
    harness: Harness, database_url: str, tmp_path: Path
) -> None:
    parked, run_id = await parked_in_awaiting_code(harness)
    paid = await invoice_with_unique_contacts(harness.pool)
    await paid_by_sms(harness, paid)
    client = harness.client

    found = await eventually(
        lambda: find_stuck(client, older_than=timedelta(0), customer_id=parked.customer_id),
        lambda rows: len(rows) == 1,
    )
    assert [(a.invoice_id, a.run_id, a.status) for a in found] == [
        (parked.invoice_id, run_id, PaymentStatus.AWAITING_CODE)
    ]
    row = found[0]
    assert row.payer_contact_id == parked.payer_contact_id and row.payer_name == "Designated Payer"
    assert row.waiting_for.startswith("Waiting for the code sent by SMS to •••-•••-")
    assert row.in_status_since >= row.started_at
    assert await find_stuck(client, older_than=timedelta(0), customer_id=paid.customer_id) == []
    assert await find_stuck(client, older_than=timedelta(hours=1), customer_id=parked.customer_id) == []
    assert (
        await find_stuck(
            client,
            older_than=timedelta(0),
            statuses=(PaymentStatus.AWAITING_PAYMENT,),
            customer_id=parked.customer_id,
        )
        == []
    )

    env = cli_env(client, database_url, tmp_path, TEMPORAL_TASK_QUEUE=harness.task_queue)
    rc, out, err = await run_cli(
        "ops", "stuck", "--older-than", "0s", "--status", "AWAITING_CODE", "--customer", parked.customer_id,
        "--json", env=env, cwd=tmp_path,
    )  # fmt: skip
    assert rc == 0, err
    rows = json.loads(out)
    assert [r["invoice_id"] for r in rows] == [parked.invoice_id]
    assert rows[0]["status"] == "AWAITING_CODE" and "SMS" in rows[0]["waiting_for"]

    rc, out, err = await run_cli_in_process(
        "ops", "stuck", "--older-than", "0s", "--customer", parked.customer_id, env=env, cwd=tmp_path
    )
    assert rc == 0, err
    assert parked.invoice_id in out and "AWAITING_CODE" in out and "Waiting for the code" in out

    rc, out, err = await run_cli_in_process("ops", "stuck", "--older-than", "soon", env=env, cwd=tmp_path)
    assert rc != 0 and out == ""
    assert err.strip().splitlines() == ["error: cannot read duration 'soon'; use e.g. 90s, 15m, 2h, 1h30m"]


async def test_show_prints_states_and_the_verified_audit_trail(
    harness: Harness, database_url: str, tmp_path: Path
) -> None:
    inv = await invoice_with_unique_contacts(harness.pool)
    await paid_by_sms(harness, inv)

    report = await load_attempt_report(
        harness.client, harness.pool, inv.invoice_id, audit_key=harness.settings.audit_key()
    )
    assert report.execution_status == "COMPLETED"
    assert report.outcome is not None and report.outcome.status is PaymentStatus.PAID
    assert [s for _, s in report.status_changes] == [
        PaymentStatus.RESOLVING_PAYER,
        PaymentStatus.CHOOSING_CHANNEL,
        PaymentStatus.AWAITING_CODE,
        PaymentStatus.AWAITING_PAYMENT,
        PaymentStatus.SUBMITTING,
        PaymentStatus.PAID,
    ]
    assert report.chain_ok and [r["event_type"] for r in report.trail][-1] == "PAYMENT_ACCEPTED"
    out = Console(record=True, width=250)
    render_report(out, report)
    text = out.export_text()
    assert "chain verified: 7 events" in text and "PAYMENT_ACCEPTED" in text and "ended PAID" in text

    parked, _ = await parked_in_awaiting_code(harness)
    live = await load_attempt_report(
        harness.client, harness.pool, parked.invoice_id, audit_key=harness.settings.audit_key()
    )
    assert live.state is not None and live.state.status is PaymentStatus.AWAITING_CODE
    assert live.note is None and live.chain_ok

    env = cli_env(harness.client, database_url, tmp_path)
    rc, out_text, err = await run_cli_in_process("ops", "show", inv.invoice_id, env=env, cwd=tmp_path)
    assert rc == 0, err
    assert "chain verified" in out_text and "OTP_VERIFIED" in out_text and "SUBMITTING" in out_text

    rc, out_text, err = await run_cli_in_process("ops", "show", "INV-NOPE-404", env=env, cwd=tmp_path)
    assert rc == 1
    assert err.strip().splitlines() == ["error: no attempt and no audit trail for invoice INV-NOPE-404"]


async def test_replay_command_replays_every_run_of_a_live_workflow_id(
    harness: Harness, database_url: str, tmp_path: Path
) -> None:
    inv = await invoice_with_unique_contacts(harness.pool)
    first = (await harness.gateway.open(inv.invoice_id, OPERATOR)).run_id
    await harness.gateway.cancel(inv.invoice_id, first, CancelInput(client=OPERATOR))
    await harness.gateway.handle(inv.invoice_id, first).result()
    second = await paid_by_sms(harness, inv)
    workflow_id = workflow_id_for(inv.invoice_id)

    async def closed_runs() -> list[str]:
        query = f"WorkflowId = '{workflow_id}' AND ExecutionStatus = 'Completed'"
        return [wf.run_id async for wf in harness.client.list_workflows(query)]

    assert len(await eventually(closed_runs, lambda runs: len(runs) == 2)) == 2

    env = cli_env(harness.client, database_url, tmp_path)
    rc, out, err = await run_cli("replay", "--workflow-id", workflow_id, env=env, cwd=tmp_path)
    assert rc == 0, out + err
    lines = out.strip().splitlines()
    assert lines[-1] == "2 replayed, 0 failed"
    assert {line.split()[0] for line in lines[:-1]} == {"ok"}
    assert first in out and second in out

    by_query = await run_replay(
        harness.settings, [], None, f"WorkflowId = '{workflow_id}'", 10, client=harness.client
    )
    assert sorted(line.run_id or "" for line in by_query) == sorted([first, second])
    assert all(line.ok for line in by_query)
