"""The attack phase's checks can fail: each is shown a world where its promise is broken."""

import secrets
from pathlib import Path

import asyncpg
import httpx

from tools.chaos.arena import AnswerTally
from tools.chaos.attack_phase import answers_promise, money_promises, money_verdict
from tools.chaos.log_secrets import RunSecrets, check_logs, stack_logs
from tools.chaos.send_caps import SendCaps, SendCount, judge, sends_beyond

CAPS = SendCaps(per_invoice=5, per_invoice_window_seconds=1800, per_destination_day=10, cooldown_seconds=1)
ACCESS = '127.0.0.1:5000 - "POST /api/portal/sessions HTTP/1.1" 200\n'


def _secrets() -> RunSecrets:
    found = RunSecrets()
    found.add("code", ["481516"])
    found.add("phone", ["+15565550123", "15565550123"])
    found.add("email", ["payer-x@attack.example"])
    found.add("pay-link token", ["v1.SU5WLTE.1767225600.abcdefgh.signaturepart"])
    found.add("account number", ["000912345678"])
    return found


def _work_dir(tmp_path: Path, worker: str, portal: str = ACCESS) -> Path:
    (tmp_path / "pgdata").mkdir()
    (tmp_path / "pgdata" / "log").write_text("LOG:  database system is ready to accept connections\n")
    (tmp_path / "portal.log").write_text(portal)
    (tmp_path / "worker.log").write_text(worker)
    (tmp_path / "schemathesis.log").write_text(
        "the attacker's own tool: Bearer v1.SU5WLTE.1767225600.abcdefgh\n"
    )
    return tmp_path


def test_the_log_grep_holds_on_clean_logs_that_show_requests(tmp_path: Path) -> None:
    work = _work_dir(tmp_path, "WARNING send to •••-•••-0123 at 2026-11-29T00:21:33.481516Z\n")
    promise = check_logs(work, _secrets())
    assert promise.held, promise
    assert {p.name for p in stack_logs(work)} == {"log", "portal.log", "worker.log"}


def test_the_log_grep_finds_each_planted_secret(tmp_path: Path) -> None:
    planted = {
        "code": "INFO your code is 481516\n",
        "phone": "WARNING twilio refused 15565550123\n",
        "email": "WARNING sendgrid: timeout sending to PAYER-X@attack.example\n",
        "pay-link token": "GET /pay/v1.SU5WLTE.1767225600.abcdefgh.signaturepart\n",
        "account number": "ERROR Failing row contains (000912345678)\n",
    }
    for kind, line in planted.items():
        work = tmp_path / kind.replace(" ", "-")
        work.mkdir()
        promise = check_logs(_work_dir(work, "nothing to see\n" + line), _secrets())
        assert not promise.held, kind
        assert promise.measured.startswith("1 found") and f"{kind} in worker.log:2" in promise.detail, promise


def test_the_log_grep_means_nothing_without_request_lines(tmp_path: Path) -> None:
    promise = check_logs(_work_dir(tmp_path, "", portal=""), _secrets())
    assert not promise.held and "access log shows no request" in promise.detail


async def test_a_planted_unrecorded_debit_is_counted(db_pool: asyncpg.Pool) -> None:
    since = await db_pool.fetchval("SELECT now()")
    key = f"PAY-ATTACK-UNRECORDED-{secrets.token_hex(4)}"
    await db_pool.execute(
        "INSERT INTO sandbox_debits (id, instance, idempotency_key, request_digest, amount_cents, currency,"
        " routing_number, account_last4, scenario, status)"
        " VALUES ($1, 'attack-check', $2, 'x', 125000, 'USD', '011000015', '6789', 'settle', 'processing')",
        f"dbt-{secrets.token_hex(6)}",
        key,
    )
    unrecorded, doubled = await money_promises(db_pool, since=since)
    assert not unrecorded.held and unrecorded.measured.startswith("unrecorded debits 1 ")
    assert key in unrecorded.detail
    assert doubled.measured.startswith("double debits 0")


def test_two_live_debits_of_one_invoice_are_a_double_debit() -> None:
    unrecorded, doubled = money_verdict([], {"INV-X": 2}, debits=3, invoices=2)
    assert unrecorded.held
    assert not doubled.held and doubled.measured.startswith("double debits 1 ") and "INV-X" in doubled.detail
    # A promise over no money at all proves nothing.
    assert not any(p.held for p in money_verdict([], {}, debits=0, invoices=0))


def test_sends_beyond_the_caps_are_counted_per_invoice_and_per_destination() -> None:
    assert sends_beyond([float(t) for t in range(5)], 5, 1800) == 0
    assert sends_beyond([float(t) for t in range(7)], 5, 1800) == 2
    assert sends_beyond([0.0, 1.0, 2000.0, 2001.0], 2, 1800) == 0  # the window moved on
    within = SendCount(per_invoice={"A": [0.0, 1.0], "B": [2.0]}, per_destination={"d": [0.0, 1.0, 2.0]})
    assert judge(within, CAPS).beyond == 0
    one_invoice = SendCount(per_invoice={"A": [float(t) for t in range(6)]}, per_destination={"d": [0.0] * 6})
    assert judge(one_invoice, CAPS).beyond == 1
    many = SendCount(
        per_invoice={f"I{i}": [float(i), float(i) + 0.5] for i in range(6)},
        per_destination={"one phone": [t for i in range(6) for t in (float(i), float(i) + 0.5)]},
    )
    judged = judge(many, CAPS)
    assert judged.beyond == 2 and "a shared destination: 2 beyond 10 a day" in judged.details
    orphan = SendCount(per_invoice={}, per_destination={"d": [0.0]}, unrecorded=1)
    assert judge(orphan, CAPS).beyond == 1


def _response(status: int, body: dict[str, str]) -> httpx.Response:
    return httpx.Response(status, json=body, request=httpx.Request("POST", "http://portal.test/x"))


def test_a_5xx_to_an_attack_breaks_the_promise_but_the_broken_providers_refusal_does_not() -> None:
    tally = AnswerTally()
    tally.record("poison", _response(422, {"error": "InvalidInput"}), broken_channel="sms")
    tally.record("pump", _response(502, {"error": "DeliveryFailed"}), broken_channel="sms")
    assert answers_promise(tally).held
    tally.record("poison", _response(500, {"error": "Internal"}), broken_channel="sms")
    broken = answers_promise(tally)
    assert not broken.held and broken.measured.startswith("5xx 1 of 3 requests")
    unanswered = AnswerTally(unanswered=["open: ReadTimeout"])
    assert not answers_promise(unanswered).held
