"""Issue 10's attacks, thrown at the campaign's stack once its customers have settled.

Poison bank details on real verified and deposit attempts; plaintext starts and messages through a
Temporal client without the codec; code pumping on many invoices whose payers share one phone and
one email; staff changing the payer under a running attempt. Every answer is tallied, and the
money, the sends and the answers are judged as promises (`run_attacks`).
"""

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import asyncpg
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter

from domain.attempt import workflow_id_for
from infra.settings import Settings
from starters.workflow_client import parse_session_id
from tools.chaos.arena import Arena, AttackSetupFailed, Seeded, unique_account, unique_phone
from tools.chaos.checks import Promise
from tools.chaos.send_caps import SendCaps, count_sends_beyond_caps

FULLWIDTH_ACCOUNT = "０００１２３４５６７８９"  # noqa: RUF001 - issue 10 finding 1, exactly
ARABIC_INDIC_ACCOUNT = "٠٠٠١٢٣٤٥٦٧٨٩"
ROUTING = "011000015"
NO_OTP_POLICY = {"required_methods": [], "exempt_kinds": ["invoice", "deposit"]}
SESSIONS = "/api/portal/sessions"


def bank(account: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "method": "echeck",
        "account_holder": "Charles Babbage",
        "routing_number": ROUTING,
        "account_number": account,
        "account_type": "checking",
    }
    body.update(overrides)
    return body


def poison_json(account: str) -> list[tuple[str, Any]]:
    """Bank details that must be refused (SPEC §11 input rules); the same as tests/hostile's."""
    return [
        ("fullwidth account", bank(FULLWIDTH_ACCOUNT)),
        ("Arabic-Indic account", bank(ARABIC_INDIC_ACCOUNT)),
        ("fullwidth routing", bank(account, routing_number="０１１００００１５")),  # noqa: RUF001
        ("NUL in account_holder", bank(account, account_holder="Charles\x00Babbage")),
        ("ESC in account_holder", bank(account, account_holder="Charles\x1bBabbage")),
        ("RTL override in account_holder", bank(account, account_holder="Charles\u202eeggabbaB")),
        ("overlong account_holder", bank(account, account_holder="B" * 10_000)),
        ("overlong account number", bank("1" * 400)),
        ("overlong routing number", bank(account, routing_number="0" * 400)),
        ("account number as a JSON number", bank(account) | {"account_number": int(account)}),
        ("unknown extra field", bank(account, memo="hi")),
        ("unknown field naming a destination", bank(account, email="attacker@example.net")),
        ("account type outside the set", bank(account, account_type="checking\x00")),
        ("a JSON array", [bank(account)]),
        ("JSON null", None),
    ]


def poison_raw(account: str, max_bytes: int) -> list[tuple[str, bytes, str]]:
    good = json.dumps(bank(account))
    return [
        ("not JSON", b"account_number=" + account.encode(), "application/json"),
        ("truncated JSON", good[: len(good) // 2].encode(), "application/json"),
        (
            "invalid UTF-8",
            good.replace("Charles", "Ch\udcffrles").encode("utf-8", "surrogateescape"),
            "application/json",
        ),
        ("UTF-16 JSON", good.encode("utf-16"), "application/json"),
        ("form-encoded", urlencode(bank(account)).encode(), "application/x-www-form-urlencoded"),
        (
            "oversized body",
            json.dumps({**bank(account), "pad": "x" * (max_bytes * 2)}).encode(),
            "application/json",
        ),
    ]


@dataclass
class PoisonOutcome:
    bodies: int = 0
    clean: int = 0  # 4xx
    too_large: int = 0
    other: list[str] | None = None
    paid_after: int = 0
    second_refused: int = 0
    attempts: int = 0


async def poison_bank_details(arena: Arena, settings: Settings) -> tuple[Promise, list[str]]:
    """On a deposit (no code) and on a verified attempt: hostile bodies, then one good payment and a second."""
    deposit = await arena.seed_customer(kind="deposit", amount_cents=20_000)
    invoice = await arena.seed_customer()
    deposit_session = str((await arena.open("poison: open deposit", deposit.token))["session_id"])
    verified_session = await arena.verified("poison: verify", invoice)
    outcome = PoisonOutcome(other=[])
    assert outcome.other is not None
    for seeded, session_id in ((deposit, deposit_session), (invoice, verified_session)):
        outcome.attempts += 1
        path = f"{SESSIONS}/{session_id}/payment"
        account = unique_account()
        arena.run_secrets.add("account number", [account])
        tries: list[tuple[str, dict[str, Any]]] = [
            (label, {"json": body}) for label, body in poison_json(account)
        ] + [
            (label, {"content": raw, "headers": {"Content-Type": kind}})
            for label, raw, kind in poison_raw(account, settings.max_request_bytes)
        ]
        for label, request in tries:
            outcome.bodies += 1
            response = await arena.call(f"poison: {label}", "POST", path, token=seeded.token, **request)
            if response is not None and 400 <= response.status_code < 500:
                outcome.clean += 1
                outcome.too_large += response.status_code == 413
            else:
                shown = "no answer" if response is None else str(response.status_code)
                outcome.other.append(f"{seeded.invoice_id} {label}: {shown}")
        paid = await arena.call("poison: real payment", "POST", path, token=seeded.token, json=bank(account))
        if paid is not None and paid.status_code == 200 and paid.json().get("status") == "PAID":
            outcome.paid_after += 1
        again = await arena.call(
            "poison: second payment", "POST", path, token=seeded.token, json=bank(unique_account())
        )
        if again is not None and 400 <= again.status_code < 500:
            outcome.second_refused += 1
    ids = [deposit.invoice_id, invoice.invoice_id]
    stuck = await _stuck_in_submitting(arena.pool, arena.client, ids)
    return (
        Promise(
            "poison bank details: clean 4xx, never debited, never stuck in SUBMITTING",
            f"{outcome.clean}/{outcome.bodies} hostile bodies answered 4xx ({outcome.too_large} x 413) on"
            f" {outcome.attempts} attempts; then {outcome.paid_after} real payments PAID, {outcome.second_refused}"
            f" second payments refused; {len(stuck)} stuck in SUBMITTING",
            outcome.clean == outcome.bodies
            and outcome.too_large == outcome.attempts
            and outcome.paid_after == outcome.second_refused == outcome.attempts
            and not stuck,
            "; ".join(outcome.other[:6] + stuck),
        ),
        ids,
    )


async def _stuck_in_submitting(pool: asyncpg.Pool, client: Client, invoice_ids: list[str]) -> list[str]:
    from workflows import search_attributes as sa

    stuck = [
        f"{r['invoice_id']}: payment row still submitting"
        for r in await pool.fetch(
            "SELECT invoice_id FROM payments WHERE invoice_id = ANY($1) AND status = 'submitting'",
            invoice_ids,
        )
    ]
    for invoice_id in invoice_ids:
        desc = await client.get_workflow_handle(workflow_id_for(invoice_id)).describe()
        if desc.typed_search_attributes.get(sa.PAYMENT_STATUS) == "SUBMITTING":
            stuck.append(f"{invoice_id}: attempt SUBMITTING")
    return stuck


# ---- plaintext starts --------------------------------------------------------------------------


async def plaintext_starts(arena: Arena, *, customer_wait: float) -> tuple[Promise, list[str]]:
    """An insider on the Temporal frontend, without the codec key: start, update, signal, signal-with-start."""
    target = await arena.seed_customer()
    second = await arena.seed_customer()
    insider = Client(
        arena.client.service_client, namespace=arena.client.namespace, data_converter=pydantic_data_converter
    )
    tried: list[str] = []
    handle = await insider.start_workflow(
        "PayInvoiceWorkflow",
        {"invoice_id": target.invoice_id, "policy": NO_OTP_POLICY, "timers": {"max_failed": 1000}},
        id=workflow_id_for(target.invoice_id),
        task_queue=arena.task_queue,
    )
    payment = {"details": bank(unique_account()), "client": {"actor": "customer"}}
    tried.append("update submit_payment: " + await _outcome(handle.execute_update("submit_payment", payment)))
    tried.append(
        "signal payment_event: " + await _outcome(handle.signal("payment_event", {"kind": "settled"}))
    )
    tried.append("signal cancel: " + await _outcome(handle.signal("cancel", {"reason": "x"})))
    signalled = await insider.start_workflow(
        "PayInvoiceWorkflow",
        {"invoice_id": second.invoice_id, "policy": NO_OTP_POLICY},
        id=workflow_id_for(second.invoice_id),
        task_queue=arena.task_queue,
        start_signal="payment_event",
        start_signal_args=[{"kind": "settled"}],
    )
    tried.append("signal-with-start: started")
    # What the real customer sees while the insider's run holds the workflow id.
    started = time.monotonic()
    seen = await arena.call(
        "customer opens while a plaintext run holds the id",
        "POST",
        SESSIONS,
        token=target.token,
        wait=customer_wait,
    )
    customer_saw = (
        f"no answer in {customer_wait:.0f} s"
        if seen is None
        else f"{seen.status_code} {_error_name(seen)} after {time.monotonic() - started:.1f} s"
    )
    refused = [await _refused_by_worker(h) for h in (handle, signalled)]
    for h in (handle, signalled):
        await arena.client.get_workflow_handle(h.id).terminate("chaos: hostile plaintext start")
    after = await arena.call(
        "customer opens after the operator terminated it", "POST", SESSIONS, token=target.token
    )
    ids = [target.invoice_id, second.invoice_id]
    harm = await arena.pool.fetchrow(
        "SELECT (SELECT count(*) FROM payments WHERE invoice_id = ANY($1)) AS payments,"
        " (SELECT count(*) FROM invoices WHERE id = ANY($1) AND status = 'paid') AS paid,"
        " (SELECT count(*) FROM audit_events WHERE invoice_id = ANY($1) AND event_type = 'OTP_VERIFIED') AS verified",
        ids,
    )
    return (
        Promise(
            "plaintext starts through a plain Temporal client: refused (no debit, no PAID, no OTP_VERIFIED)",
            f"{sum(refused)}/2 runs refused by the worker before any activity; payments {harm['payments']},"
            f" PAID {harm['paid']}, OTP_VERIFIED rows {harm['verified']}; the customer saw {customer_saw},"
            f" and {_shown(after)} once it was terminated",
            all(refused)
            and harm["payments"] == harm["paid"] == harm["verified"] == 0
            and (seen is None or seen.status_code < 500)
            and after is not None
            and after.status_code == 200,
            "; ".join(tried),
        ),
        ids,
    )


async def _outcome(call: Any, within: float = 5.0) -> str:
    try:
        await asyncio.wait_for(call, timeout=within)
    except TimeoutError:
        return f"no answer in {within:.0f} s"
    except Exception as exc:  # whatever the server says is the outcome we record
        return type(exc).__name__
    return "accepted"


async def _refused_by_worker(handle: WorkflowHandle[Any, Any], within: float = 15.0) -> bool:
    """The worker failed the run's workflow task and ran none of its code: no activity, no command."""
    deadline = time.monotonic() + within
    while True:
        types = {e.event_type for e in (await handle.fetch_history()).events}
        ran = types & {
            EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
            EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
        }
        if ran:
            return False
        if EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED in types:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.2)


def _error_name(response: Any) -> str:
    try:
        return str(response.json().get("error", ""))
    except ValueError:
        return ""


def _shown(response: Any) -> str:
    return "no answer" if response is None else f"{response.status_code} {_error_name(response)}".strip()


# ---- pumping -----------------------------------------------------------------------------------


async def pump_codes(
    arena: Arena, caps: SendCaps, *, invoices: int, rounds: int, hmac_key: bytes
) -> tuple[Promise, list[str]]:
    """`open → request code → cancel`, `rounds` times per link, on `invoices` invoices whose payers
    share one email and one phone, alternating channels; every run starts from the cooldown's end."""
    shared = (f"pumped-{arena.tag.lower()}@attack.example", unique_phone())
    seeded = [await arena.seed_customer(contacts=[shared]) for _ in range(invoices)]
    refusals: list[tuple[int, int | None, str]] = []

    async def pump(inv: Seeded, offset: int) -> None:
        for round_no in range(rounds):
            channel = ("email", "sms")[(round_no + offset) % 2]
            opened = await arena.call("pump: open", "POST", SESSIONS, token=inv.token)
            if opened is None or opened.status_code != 200:
                if opened is not None and opened.status_code == 429:
                    refusals.append((429, opened.json().get("retry_after"), "open"))
                await asyncio.sleep(caps.cooldown_seconds + 0.2)
                continue
            session = f"{SESSIONS}/{opened.json()['session_id']}"
            sent = await arena.call(
                "pump: code", "POST", f"{session}/code", token=inv.token, json={"channel": channel}
            )
            if sent is not None and sent.status_code == 429:
                refusals.append((429, sent.json().get("retry_after"), _error_name(sent)))
            await arena.call("pump: cancel", "POST", f"{session}/cancel", token=inv.token)
            await asyncio.sleep(caps.cooldown_seconds + 0.2)

    await asyncio.gather(*(pump(inv, i) for i, inv in enumerate(seeded)))
    ids = [inv.invoice_id for inv in seeded]
    counted = await count_sends_beyond_caps(arena.pool, arena.inbox, ids, set(shared), caps, hmac_key)
    bad_refusals = [r for r in refusals if not r[1] or r[1] <= 0]
    return (
        Promise(
            "sends beyond the caps 0",
            f"sends beyond the caps {counted.beyond}; {counted.summary()};"
            f" {len(refusals)} refusals, all 429 with retry_after: {not bad_refusals}",
            counted.beyond == 0 and bool(refusals) and not bad_refusals and counted.delivered > 0,
            "; ".join(counted.details[:6] + [f"refusal without retry_after: {r}" for r in bad_refusals[:3]]),
        ),
        ids,
    )


# ---- payer change under a running attempt ------------------------------------------------------


async def payer_change_mid_attempt(arena: Arena) -> tuple[Promise, list[str]]:
    """Staff mark another payer while a code is out, and change the payer's email after it verified."""

    def two_contacts() -> list[tuple[str, str]]:
        return [
            (f"old-{arena.tag.lower()}-{arena.seeded}@attack.example", unique_phone()),
            (f"new-{arena.tag.lower()}-{arena.seeded}@attack.example", unique_phone()),
        ]

    code_sent = await arena.seed_customer(contacts=two_contacts())
    opened = await arena.open("payer change: open", code_sent.token)
    sent_session = str(opened["session_id"])
    old_to = code_sent.contacts[0][0 if arena.working_channel == "email" else 1]
    await arena.call(
        "payer change: code",
        "POST",
        f"{SESSIONS}/{sent_session}/code",
        token=code_sent.token,
        json={"channel": arena.working_channel},
    )
    verified = await arena.seed_customer(contacts=two_contacts())
    verified_session = await arena.verified("payer change: verify", verified)
    verified_old = verified.contacts[0]
    moved = await arena.call(
        "payer change: PUT portal-payer",
        "PUT",
        f"/api/staff/customers/{code_sent.customer_id}/portal-payer",
        staff=True,
        json={"contact_id": code_sent.contact_ids[1]},
    )
    new_email = f"changed-{arena.tag.lower()}@attack.example"
    arena.run_secrets.add("email", [new_email])
    patched = await arena.call(
        "payer change: PATCH contact",
        "PATCH",
        f"/api/staff/contacts/{verified.contact_ids[0]}",
        staff=True,
        json={"email": new_email},
    )
    # Marked once both changes answered: a code the earlier request delivered while staff were still
    # typing is not one sent after the change.
    changed_at = time.monotonic()
    problems = [
        f"{label} answered {_shown(r)}"
        for label, r in (("PUT", moved), ("PATCH", patched))
        if r is None or r.status_code != 200
    ]
    for seeded, session_id in ((code_sent, sent_session), (verified, verified_session)):
        session = f"{SESSIONS}/{session_id}"
        old_link = [
            ("GET", session, None),
            ("POST", SESSIONS, None),
            ("POST", f"{session}/code", {"channel": arena.working_channel}),
            ("POST", f"{session}/verify", {"code": "123456"}),
            ("POST", f"{session}/payment", bank(unique_account())),
        ]
        for method, path, body in old_link:
            r = await arena.call("payer change: old link", method, path, token=seeded.token, json=body)
            if r is None or r.status_code != 401 or r.json().get("reason") != "link_revoked":
                problems.append(
                    f"{seeded.invoice_id} old link {method} {path.rsplit('/', 1)[-1]}: {_shown(r)}"
                )
        fresh = arena.new_link(seeded.invoice_id)
        r = await arena.call(
            "payer change: pay the old attempt with a new link",
            "POST",
            f"{session}/payment",
            token=fresh,
            json=bank(unique_account()),
        )
        if r is None or r.status_code == 200:
            problems.append(f"{seeded.invoice_id}: the old attempt took a payment ({_shown(r)})")
        status = await _final_status(arena, seeded.invoice_id, parse_session_id(session_id)[1])
        if status != "CANCELLED":
            problems.append(f"{seeded.invoice_id}: old attempt {status or 'not found'}, not CANCELLED")
    ids = [code_sent.invoice_id, verified.invoice_id]
    old_destinations = {old_to, verified_old[0], verified_old[1]}
    late_codes = [
        m for m in arena.inbox.messages() if m.recipient in old_destinations and m.code and m.at > changed_at
    ]
    payments = await arena.pool.fetchval("SELECT count(*) FROM payments WHERE invoice_id = ANY($1)", ids)
    return (
        Promise(
            "payer change mid-attempt: attempt cancelled, old link link_revoked, no code to the old destination",
            f"2 attempts (code sent; verified): {len(problems)} problems, {len(late_codes)} codes to an old"
            f" destination after the change, {payments} payments",
            not problems and not late_codes and payments == 0,
            "; ".join(problems[:6] + [f"code to {m.provider} after the change" for m in late_codes[:3]]),
        ),
        ids,
    )


async def _final_status(arena: Arena, invoice_id: str, run_id: str, within: float = 15.0) -> str:
    """Where the attempt that was running at the change ended: its own run, not whichever run the
    invoice's workflow id names now (a link that should have been refused may have opened another)."""
    from workflows import search_attributes as sa

    deadline = time.monotonic() + within
    status = ""
    while time.monotonic() < deadline:
        desc = await arena.client.get_workflow_handle(workflow_id_for(invoice_id), run_id=run_id).describe()
        status = str(desc.typed_search_attributes.get(sa.PAYMENT_STATUS) or "")
        if desc.status is not None and desc.status.name != "RUNNING":
            return status
        await asyncio.sleep(0.3)
    return status


__all__ = [
    "AttackSetupFailed",
    "payer_change_mid_attempt",
    "plaintext_starts",
    "poison_bank_details",
    "pump_codes",
    "unique_phone",
]
