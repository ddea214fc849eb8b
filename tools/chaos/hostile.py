"""Hostile input: schemathesis against `/openapi.json`, and an attacker guessing codes.

The attacker holds a genuine pay link but not the payer's phone or inbox. Whatever it does (many
guesses at once, new tabs, cancelling and starting a new attempt, asking for new codes) PostgreSQL
must show at most `OTP_MAX_FAILED` codes checked for that invoice inside one lockout window.
"""

import asyncio
import json
import random
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tools.bench.driver import BenchInvoice
from tools.chaos.checks import Promise

SCHEMATHESIS_CHECKS = "not_a_server_error,response_schema_conformance"
MAX_PASSES = 30


@dataclass
class AttackResult:
    invoice_id: str
    guesses_sent: int = 0
    guesses_answered: int = 0
    refused: int = 0
    verified: int = 0
    checked_in_db: int = 0


async def _attack(
    http: httpx.AsyncClient, inv: BenchInvoice, rng: random.Random, rounds: int, channel: str
) -> AttackResult:
    result = AttackResult(inv.invoice_id)
    auth = {"Authorization": f"Bearer {inv.token}"}

    async def guess(session_id: str) -> None:
        result.guesses_sent += 1
        code = f"{rng.randrange(1_000_000):06d}"
        response = await http.post(
            f"/api/portal/sessions/{session_id}/verify",
            json={"code": code},
            headers={**auth, "Idempotency-Key": secrets.token_hex(8)},
        )
        if response.status_code == 200:
            result.guesses_answered += 1
            result.verified += bool(response.json().get("verified"))
        else:
            result.refused += 1

    for round_no in range(rounds):
        opened = await http.post("/api/portal/sessions", headers=auth)  # a new tab, or a new attempt
        if opened.status_code != 200:
            result.refused += 1
            continue
        session_id = opened.json()["session_id"]
        if opened.json()["status"] == "CHOOSING_CHANNEL" or round_no % 2:
            for _ in range(6):  # the working channel may fail transiently; ask again
                sent = await http.post(
                    f"/api/portal/sessions/{session_id}/code", json={"channel": channel}, headers=auth
                )
                if sent.status_code in (200, 409, 429):
                    break
        # Many guesses at once, from this tab and a second one.
        second = await http.post("/api/portal/sessions", headers=auth)
        sessions = [session_id] + ([second.json()["session_id"]] if second.status_code == 200 else [])
        await asyncio.gather(*(guess(sessions[i % len(sessions)]) for i in range(8)))
        if round_no % 2 == 0:  # give up on this attempt and start another
            await http.post(f"/api/portal/sessions/{session_id}/cancel", headers=auth)
    return result


async def brute_force(
    http: httpx.AsyncClient,
    pool: asyncpg.Pool,
    invoices: list[BenchInvoice],
    *,
    max_failed: int,
    rounds: int = 6,
    channel: str = "email",
) -> Promise:
    """`channel` is one that works: the lower bound needs codes to have been sent."""
    rng = random.Random(secrets.randbits(32))
    results = await asyncio.gather(*(_attack(http, inv, rng, rounds, channel) for inv in invoices))
    coded: set[str] = set()
    for res in results:
        res.checked_in_db = int(
            await pool.fetchval("SELECT count(*) FROM otp_checks WHERE invoice_id = $1", res.invoice_id)
        )
        if await pool.fetchval(
            "SELECT count(*) FROM otp_challenges WHERE invoice_id = $1 AND sent_at IS NOT NULL",
            res.invoice_id,
        ):
            coded.add(res.invoice_id)
    return brute_force_verdict(results, coded, max_failed=max_failed)


def brute_force_verdict(results: list[AttackResult], coded: set[str], *, max_failed: int) -> Promise:
    """At most `max_failed` codes checked per invoice (the upper bound), and the attack was real:
    every invoice that was sent a code had exactly that many of the guesses checked before the
    lock (the lower bound: guesses refused before reaching the check would prove nothing)."""
    worst = max((r.checked_in_db for r in results), default=0)
    sent = sum(r.guesses_sent for r in results)
    under = [r for r in results if r.invoice_id in coded and r.checked_in_db < max_failed]
    held = (
        bool(coded)
        and worst <= max_failed
        and not under
        and all(r.verified == 0 for r in results)
        and all(r.guesses_answered > 0 for r in results if r.invoice_id in coded)
    )
    return Promise(
        f"brute force: ≤ {max_failed} guesses per invoice per lockout window",
        f"{sent} guesses sent at {len(results)} invoices ({len(coded)} sent a code);"
        f" checked per invoice {min((r.checked_in_db for r in results), default=0)}..{worst}",
        held,
        "; ".join(
            f"{r.invoice_id}: {r.checked_in_db} checked, {r.guesses_answered} answered, {r.verified} verified"
            for r in results
        ),
    )


def schemathesis_binary() -> str:
    beside = Path(sys.executable).parent / "schemathesis"
    found = str(beside) if beside.exists() else shutil.which("schemathesis")
    if not found:
        raise RuntimeError("schemathesis is missing: pip install -e '.[dev]'")
    return found


def _run_schemathesis(
    url: str, header: str | None, examples: int, report: Path, seed: int, log: Path
) -> dict[str, Any]:
    argv = [
        schemathesis_binary(),
        "run",
        f"{url}/openapi.json",
        "--checks",
        SCHEMATHESIS_CHECKS,
        "--max-examples",
        str(examples),
        "--phases",
        "examples,coverage,fuzzing",
        "--generation-database",
        "none",
        "--suppress-health-check",
        "all",
        "--seed",
        str(seed),
        # One worker: hypothesis's lambda introspection is not thread-safe (AST recursion errors).
        "--workers",
        "1",
        "--request-timeout",
        "60",
        "--no-color",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
    ]
    if header:
        argv += ["--header", header]
    with log.open("ab") as out:
        completed = subprocess.run(
            argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL, timeout=3600, check=False
        )
    return {"exit_code": completed.returncode, **_count_ndjson(report)}


def _count_ndjson(path: Path) -> dict[str, Any]:
    """Calls made, 5xx answers and failed checks, read from schemathesis's event stream."""
    calls = server_errors = 0
    failures: dict[str, int] = {}
    if not path.exists():
        return {"calls": 0, "server_errors": 0, "failures": {"no report": 1}}
    for line in path.read_text().splitlines():
        try:
            finished = json.loads(line).get("ScenarioFinished")
        except ValueError:
            continue
        if not finished:
            continue
        if finished.get("status") == "error":
            failures["error"] = failures.get("error", 0) + 1
        recorder = finished.get("recorder") or {}
        for interaction in (recorder.get("interactions") or {}).values():
            calls += 1
            status = (interaction.get("response") or {}).get("status_code")
            if isinstance(status, int) and status >= 500:
                server_errors += 1
        for results in (recorder.get("checks") or {}).values():
            for check in results:
                if str(check.get("status", "")).lower() == "failure":
                    name = check.get("name", "?")
                    failures[name] = failures.get(name, 0) + 1
    return {"calls": calls, "server_errors": server_errors, "failures": failures}


async def fuzz_api(url: str, *, pay_token: str, staff_token: str, calls: int, work_dir: Path) -> Promise:
    """Passes without a token, with a pay-link token and with the staff token, until `calls` are made."""
    passes = [
        ("anonymous", None),
        ("pay link", f"Authorization: Bearer {pay_token}"),
        ("staff", f"Authorization: Bearer {staff_token}"),
    ]
    # Each pass makes roughly 20 + 8 x max-examples calls per operation (14 operations).
    examples = max(3, min(200, calls // (len(passes) * 14 * 8)))
    totals = {"calls": 0, "server_errors": 0}
    failures: dict[str, int] = {}
    exit_codes: list[int] = []
    for i in range(MAX_PASSES):
        if totals["calls"] >= calls:
            break
        name, header = passes[i % len(passes)]
        out = await asyncio.to_thread(
            _run_schemathesis,
            url,
            header,
            examples,
            work_dir / f"schemathesis-{i}.ndjson",
            1000 + i,
            work_dir / "schemathesis.log",
        )
        totals["calls"] += out["calls"]
        totals["server_errors"] += out["server_errors"]
        for k, v in out["failures"].items():
            failures[f"{name}:{k}"] = failures.get(f"{name}:{k}", 0) + v
        exit_codes.append(out["exit_code"])
    return Promise(
        "schemathesis: 0 responses 5xx, 0 schema violations",
        f"{totals['calls']} calls in {len(exit_codes)} passes; {totals['server_errors']} 5xx;"
        f" {sum(failures.values())} failed checks",
        totals["server_errors"] == 0 and not failures and totals["calls"] >= min(calls, 1),
        f"exit codes {exit_codes}; {failures}; see {work_dir / 'schemathesis.log'}" if failures else "",
    )
