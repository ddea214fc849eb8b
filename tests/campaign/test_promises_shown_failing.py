"""The campaign's promises no test had shown broken, each shown a world where it breaks.

(tests/campaign/test_checks.py and test_attack_checks.py hold the others.) The money counts look at
the processor's own debits by the invoice it was told, not through payment rows, whose unique index
allows one open payment per invoice: a count through them could never reach two.
"""

import json
import secrets
from pathlib import Path

import asyncpg

from tests.proof.support import forge_audit_row, pay
from tests.support import Harness, create_invoice
from tests.support import test_settings as settings_for_tests
from tools.bench.driver import BenchInvoice
from tools.chaos.attack_phase import money_promises
from tools.chaos.campaign import resumed_across_restart
from tools.chaos.checks import check_audit, check_codes, check_outcomes, check_payments, check_settled
from tools.chaos.customers import CustomerRecord, Plan
from tools.chaos.hostile import _count_ndjson
from tools.standins.faulty_providers import AcceptedMessages


def _record(kind: str = "pay", channel: str = "email", **fields: object) -> CustomerRecord:
    tag = secrets.token_hex(4)
    inv = BenchInvoice(f"INV-P{tag}", f"p-{tag}@example.com", "+15550000000")
    record = CustomerRecord(inv, Plan(kind, channel))
    for name, value in fields.items():
        setattr(record, name, value)
    return record


async def test_an_attempt_neither_terminal_nor_resumable_breaks_the_settled_promise() -> None:
    good, stuck, ended_midway = _record(), _record(), _record()
    seen = {
        good.invoice.invoice_id: ("COMPLETED", "PAID"),
        stuck.invoice.invoice_id: ("RUNNING", "SUBMITTING"),  # running, but not where a customer resumes
        ended_midway.invoice.invoice_id: ("COMPLETED", "AWAITING_CODE"),  # closed without an outcome
    }
    promise = await check_settled(seen, None, [good, stuck, ended_midway])  # type: ignore[arg-type]
    assert promise.name == "every attempt terminal or resumable"
    assert not promise.held and promise.measured.startswith("1/3")
    assert stuck.invoice.invoice_id in promise.detail and ended_midway.invoice.invoice_id in promise.detail
    held = await check_settled({good.invoice.invoice_id: ("COMPLETED", "PAID")}, None, [good])  # type: ignore[arg-type]
    assert held.held


def test_a_customer_ending_elsewhere_than_planned_breaks_the_outcomes_promise() -> None:
    payer, decliner = _record("pay"), _record("declined")
    seen = {
        payer.invoice.invoice_id: ("COMPLETED", "PAID"),
        decliner.invoice.invoice_id: ("COMPLETED", "PAID"),
    }
    promise = check_outcomes([payer, decliner], seen)
    assert not promise.held and promise.measured == "1/2" and decliner.invoice.invoice_id in promise.detail
    assert check_outcomes([payer], seen).held


def test_an_attempt_lost_across_the_server_restart_breaks_its_promise() -> None:
    kept, lost = _record("pay"), _record("pay")
    seen = {
        kept.invoice.invoice_id: ("COMPLETED", "PAID"),
        lost.invoice.invoice_id: ("RUNNING", "CHOOSING_CHANNEL"),
    }
    across = {kept.invoice.invoice_id, lost.invoice.invoice_id}
    promise = resumed_across_restart([kept, lost], seen, across)
    assert (
        not promise.held and promise.measured.startswith("1/2") and lost.invoice.invoice_id in promise.detail
    )
    assert resumed_across_restart([kept], seen, {kept.invoice.invoice_id}).held
    # No attempt in flight at the restart: the promise was not tested, so it does not hold.
    assert not resumed_across_restart([kept], seen, set()).held


def test_a_request_left_without_a_code_breaks_the_delivery_promise() -> None:
    inbox = AcceptedMessages()
    served = _record(session_id="s1", code_obtained=True)
    left = _record(session_id="s2", code_obtained=False)
    delivered, _ = check_codes([served, left], inbox, "sms", [], [], b"k")
    assert delivered.name == "every code request ends delivered or moved to the other channel"
    assert not delivered.held and left.invoice.invoice_id in delivered.detail
    # A customer who started on the broken channel and never moved off it breaks it too.
    stranded = _record(channel="sms", session_id="s3", code_obtained=True, moved_channel=False)
    assert not check_codes([served, stranded], inbox, "sms", [], [], b"k")[0].held
    moved = _record(channel="sms", session_id="s4", code_obtained=True, moved_channel=True)
    assert check_codes([served, moved], inbox, "sms", [], [], b"k")[0].held


def test_a_5xx_or_a_failed_check_in_the_schemathesis_stream_is_counted(tmp_path: Path) -> None:
    def scenario(status: int, check: str) -> str:
        return json.dumps(
            {
                "ScenarioFinished": {
                    "status": "success",
                    "recorder": {
                        "interactions": {"1": {"response": {"status_code": status}}},
                        "checks": {"1": [{"name": "response_schema_conformance", "status": check}]},
                    },
                }
            }
        )

    clean = tmp_path / "clean.ndjson"
    clean.write_text(scenario(200, "SUCCESS") + "\n" + scenario(422, "SUCCESS") + "\n")
    assert _count_ndjson(clean) == {"calls": 2, "server_errors": 0, "failures": {}}
    broken = tmp_path / "broken.ndjson"
    broken.write_text(scenario(500, "SUCCESS") + "\n" + scenario(200, "FAILURE") + "\n")
    assert _count_ndjson(broken) == {
        "calls": 2,
        "server_errors": 1,
        "failures": {"response_schema_conformance": 1},
    }
    assert _count_ndjson(tmp_path / "missing.ndjson")["failures"] == {"no report": 1}


async def _plant_live_debit(pool: asyncpg.Pool, invoice_id: str) -> None:
    await pool.execute(
        "INSERT INTO sandbox_debits (id, instance, idempotency_key, request_digest, amount_cents, currency,"
        " routing_number, account_last4, scenario, status, metadata)"
        " VALUES ($1, 'promise-check', $2, 'x', 125000, 'USD', '011000015', '6789', 'settle', 'processing',"
        " jsonb_build_object('invoice_id', $3::text))",
        f"dbt-{secrets.token_hex(6)}",
        f"PAY-PLANTED-{secrets.token_hex(6)}",
        invoice_id,
    )


async def test_two_live_debits_of_one_invoice_are_counted_doubled_by_both_money_checks(
    db_pool: asyncpg.Pool,
) -> None:
    since = await db_pool.fetchval("SELECT now()")
    inv = await create_invoice(db_pool)
    await _plant_live_debit(db_pool, inv.invoice_id)
    doubled, _ = await check_payments(db_pool, [inv.invoice_id], since=since)
    assert "0 with two live debits" in doubled.measured  # one live debit is no double
    await _plant_live_debit(db_pool, inv.invoice_id)
    doubled, _ = await check_payments(db_pool, [inv.invoice_id], since=since)
    assert not doubled.held and "1 with two live debits" in doubled.measured, doubled
    _, double_debits = await money_promises(db_pool, since=since)
    assert not double_debits.held and double_debits.measured.startswith("double debits 1 ")
    assert inv.invoice_id in double_debits.detail


async def test_a_forged_audit_row_breaks_both_audit_promises(harness: Harness) -> None:
    inv = await create_invoice(harness.pool)
    await pay(harness, inv)
    key = settings_for_tests().audit_key()
    rows, chains = await check_audit(harness.client, harness.pool, [inv.invoice_id], audit_key=key)
    assert rows.held and chains.held, (rows, chains)
    forged_id = await forge_audit_row(harness.pool, inv.invoice_id)
    run = await harness.pool.fetchrow(
        "SELECT workflow_id, run_id FROM audit_events WHERE invoice_id = $1 AND workflow_id LIKE 'pay-invoice-%'"
        " LIMIT 1",
        inv.invoice_id,
    )
    # The forgery claims the attempt's run: a row its history does not explain.
    await harness.pool.execute(
        "INSERT INTO audit_events (event_key, chain_id, event_type, invoice_id, workflow_id, run_id, actor,"
        " details, occurred_at, prev_hash, hash)"
        " SELECT 'doubled:' || event_key, chain_id, event_type, invoice_id, $2, $3, actor, details, now(),"
        " hash, hash FROM audit_events WHERE id = $1",
        forged_id,
        run["workflow_id"],
        run["run_id"],
    )
    rows, chains = await check_audit(harness.client, harness.pool, [inv.invoice_id], audit_key=key)
    assert not rows.held and "unexplained (doubled or forged) 1" in rows.measured, rows
    assert not chains.held and chains.detail == inv.invoice_id
