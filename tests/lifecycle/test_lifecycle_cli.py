"""`portalpay processor` and `portalpay ops reconcile`, run as a person runs them (SPEC §9)."""

import asyncio
import json
import os
import signal
from pathlib import Path

import asyncpg
import httpx
from temporalio.client import Client

from tests.conftest import HarnessFactory
from tests.lifecycle.services import free_port, wait_for
from tests.lifecycle.stack import SECRET, lifecycle_stack
from tests.lifecycle.test_test_accounts import accept_debit
from tests.ops.cli_process import PORTALPAY, cli_env, run_cli, run_cli_in_process
from tests.support import GOOD_ACCOUNT, create_invoice
from tests.workflow.steps import unique_email


async def test_processor_command_serves_on_the_configured_address(
    temporal_client: Client, database_url: str, tmp_path: Path, app_pool: asyncpg.Pool
) -> None:
    """It connects as the app's role, like the worker and the portal (app_pool makes sure it exists)."""
    port = free_port()
    env = cli_env(
        temporal_client,
        database_url,
        tmp_path,
        PROCESSOR_SANDBOX_URL=f"http://127.0.0.1:{port}",
        PROCESSOR_WEBHOOK_SECRET=SECRET,
    )
    proc = await asyncio.create_subprocess_exec(
        PORTALPAY,
        "processor",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

            async def health() -> int:
                try:
                    return (await http.get("/healthz")).status_code
                except httpx.HTTPError:
                    return 0

            try:
                await wait_for(health, lambda s: s == 200, what="processor up")
            except AssertionError:
                assert proc.stderr is not None
                raise AssertionError((await proc.stderr.read()).decode()[-2000:]) from None
            replay = await http.post(
                "/v1/debits",
                headers={"Idempotency-Key": "cli-" + os.urandom(6).hex()},
                json={
                    "amount_cents": 100,
                    "currency": "USD",
                    "routing_number": "011000015",
                    "account_number": "000111111113",
                },
            )
            assert replay.status_code == 201 and replay.json()["decline_reason"] == "account_closed"
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)


async def test_ops_reconcile_prints_what_it_delivered(
    harness_factory: HarnessFactory,
    db_pool: asyncpg.Pool,
    temporal_client: Client,
    database_url: str,
    tmp_path: Path,
) -> None:
    async with lifecycle_stack(harness_factory, db_pool, sandbox_webhook_drop_rate=1.0) as s:
        inv = await create_invoice(s.pool, email=unique_email())
        payment_id = await accept_debit(s, inv, GOOD_ACCOUNT, no_poll=True)
        ref = await s.pool.fetchval("SELECT processor_reference FROM payments WHERE id = $1", payment_id)
        await wait_for(
            lambda: s.processor.get_debit(ref),
            lambda d: d.status == "settled",
            what="settled at the processor",
        )
        env = cli_env(
            temporal_client,
            database_url,
            tmp_path,
            TEMPORAL_TASK_QUEUE=s.harness.task_queue,
            PROCESSOR_SANDBOX_URL=s.processor_url,
        )
        code, out, err = await run_cli("ops", "reconcile", "--json", env=env, cwd=tmp_path, timeout=120)
        assert code in (0, 3), err  # 3: some payment (maybe another test's) differs from the processor
        report = json.loads(out)
        assert {
            (d["payment_id"], d["type"]) for d in report["delivered"] if d["payment_id"] == payment_id
        } == {(payment_id, "debit.settled")}
        # `debit.processing` was no news (the payment is processing already): handled, not delivered.
        assert (
            await s.pool.fetchval(
                "SELECT applied FROM processor_events WHERE payment_id = $1 AND type = 'debit.processing'",
                payment_id,
            )
            == "no_change"
        )
        await wait_for(
            lambda: s.pool.fetchval("SELECT status FROM payments WHERE id = $1", payment_id),
            lambda st: st == "settled",
            what="settled here",
        )
        code, out, err = await run_cli_in_process("ops", "reconcile", env=env, cwd=tmp_path, timeout=120)
        assert code in (0, 3), err
        assert "Processor events" in out and "compared" in out
        assert payment_id not in out  # nothing left to deliver for it, and no mismatch

        code, out, err = await run_cli_in_process(
            "ops", "show", inv.invoice_id, env=env, cwd=tmp_path, timeout=60
        )
        assert code == 0, err
        assert "Payments" in out and payment_id in out
        assert "processing" in out and "settled" in out and "PAYMENT_SETTLED" in out, out
        assert "poll:" not in out  # reconciliation brought the news, not the workflow's own question
