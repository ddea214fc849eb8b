"""The campaign's promises, checked against PostgreSQL, the workflow histories and the providers.

Each check answers a `Promise`: what was promised, the figure measured, and whether it held.
"""

import asyncio
import hmac
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from activities.otp import code_digest
from domain.activity_io import (
    AuditEventInput,
    CheckCodeRequest,
    CheckCodeResult,
    ProcessorDebitRequest,
    SendCodeRequest,
)
from domain.attempt import PayerResolution, PaymentReceipt, workflow_id_for
from domain.bank_account import ScreenAccountRequest, ScreenAccountResult
from domain.channels import Channel, mask_destination
from domain.errors import ErrorType
from domain.status import PaymentStatus
from infra.stores.audit_trail import chain_ok
from tools.chaos.customers import TERMINAL, CustomerRecord
from tools.standins.faulty_providers import AcceptedMessages, Delivered
from workflows import activity_options as opts
from workflows import lifecycle_options as lifecycle_opts
from workflows import search_attributes as sa

RESUMABLE = {"CHOOSING_CHANNEL", "AWAITING_CODE", "AWAITING_PAYMENT"}
AUDIT_ACTIVITY = opts.APPEND_AUDIT_EVENT
DEBIT_ACTIVITY = opts.SUBMIT_DEBIT
SCREEN_ACTIVITY = lifecycle_opts.SCREEN_BANK_ACCOUNT
SCREEN_REFUSALS = {ErrorType.BANK_ACCOUNT_BLOCKED.value, ErrorType.ACCOUNT_VALIDATION_FAILED.value}


@dataclass
class Promise:
    name: str
    measured: str
    held: bool
    detail: str = ""


async def attempt_status(client: Client, invoice_id: str) -> tuple[str, str]:
    """(execution status, PaymentStatus) of the invoice's latest run."""
    desc = await client.get_workflow_handle(workflow_id_for(invoice_id)).describe()
    execution = desc.status.name if desc.status else "UNKNOWN"
    return execution, str(desc.typed_search_attributes.get(sa.PAYMENT_STATUS) or "")


async def wait_settled(client: Client, invoice_ids: list[str], within: float) -> dict[str, tuple[str, str]]:
    """Until every attempt is terminal or waiting on the customer (bounded), then the last look."""
    deadline = time.monotonic() + within
    while True:
        seen = {i: await attempt_status(client, i) for i in invoice_ids}
        unsettled = [i for i, (ex, st) in seen.items() if not _settled(ex, st)]
        if not unsettled or time.monotonic() > deadline:
            return seen
        await asyncio.sleep(1.0)


def _settled(execution: str, status: str) -> bool:
    if execution == WorkflowExecutionStatus.RUNNING.name:
        return status in RESUMABLE
    return execution == WorkflowExecutionStatus.COMPLETED.name and status in TERMINAL


async def check_settled(
    seen: dict[str, tuple[str, str]], http: httpx.AsyncClient, records: list[CustomerRecord]
) -> Promise:
    bad = {i: s for i, s in seen.items() if not _settled(*s)}
    # "Resumable" is proven by the customer's own link: the session answers and names its state.
    for rec in records:
        execution, status = seen.get(rec.invoice.invoice_id, ("", ""))
        if execution == WorkflowExecutionStatus.RUNNING.name and rec.session_id:
            response = await http.get(
                f"/api/portal/sessions/{rec.session_id}",
                headers={"Authorization": f"Bearer {rec.invoice.token}"},
            )
            if response.status_code != 200 or response.json().get("status") != status:
                bad[rec.invoice.invoice_id] = (execution, f"session answered {response.status_code}")
    resumable = sum(1 for ex, _ in seen.values() if ex == WorkflowExecutionStatus.RUNNING.name)
    return Promise(
        "every attempt terminal or resumable",
        f"{len(seen) - len(bad)}/{len(seen)} ({resumable} resumable)",
        not bad,
        "; ".join(f"{i}: {s}" for i, s in list(bad.items())[:5]),
    )


def check_outcomes(records: list[CustomerRecord], seen: dict[str, tuple[str, str]]) -> Promise:
    wrong = [
        f"{r.invoice.invoice_id} {r.plan.kind}→{seen.get(r.invoice.invoice_id, ('', '?'))[1]} {r.notes[-1:]}"
        for r in records
        if seen.get(r.invoice.invoice_id, ("", ""))[1] not in r.plan.expected
    ]
    return Promise(
        "every customer reached the outcome they went for",
        f"{len(records) - len(wrong)}/{len(records)}",
        not wrong,
        "; ".join(wrong[:5]),
    )


# A payment the processor took (whatever became of it since) versus one it never took.
_TAKEN = "p.status NOT IN ('submitting', 'declined')"
# Two debits of one invoice may both be real only when an earlier one failed or came back.
_LIVE = "('processing', 'settled')"


async def check_payments(
    pool: asyncpg.Pool, invoice_ids: list[str], *, since: datetime | None = None
) -> list[Promise]:
    """Money, looked at where a double could really appear: the processor's own debits.

    Keys belong to payment rows (SPEC §11), so a second debit shows as a processor debit no
    payment row owns (a debit nobody recorded), as two live debits of one invoice, or as an
    invoice whose debits differ from its taken payments. The campaign has a database of its own,
    so every processor debit is its; `since` narrows a shared database.
    """
    since = since or datetime.min.replace(tzinfo=UTC)
    unrecorded = await pool.fetch(
        "SELECT d.idempotency_key AS key FROM sandbox_debits d"
        " LEFT JOIN payments p ON p.idempotency_key = d.idempotency_key"
        " WHERE p.id IS NULL AND d.status <> 'declined' AND d.created_at >= $1",
        since,
    )
    per_invoice = await pool.fetch(
        "SELECT i AS invoice_id,"
        "  (SELECT count(*) FROM sandbox_debits d JOIN payments p ON p.idempotency_key = d.idempotency_key"
        "    WHERE p.invoice_id = i AND d.status <> 'declined') AS debits,"
        # Live debits by the invoice the processor was told (its metadata), not through payment
        # rows: one open payment per invoice is a unique index, so through them it is never two.
        f"  (SELECT count(*) FROM sandbox_debits d"
        f"    WHERE d.metadata->>'invoice_id' = i AND d.status IN {_LIVE} AND d.created_at >= $2) AS live,"
        f"  (SELECT count(*) FROM payments p WHERE p.invoice_id = i AND {_TAKEN}) AS taken"
        " FROM unnest($1::text[]) AS i",
        invoice_ids,
        since,
    )
    doubled = [r for r in per_invoice if r["live"] > 1]
    unmatched = [r for r in per_invoice if r["debits"] != r["taken"]]
    mismatched = await pool.fetch(
        "SELECT coalesce(d.idempotency_key, p.idempotency_key) AS key FROM"
        " (SELECT * FROM sandbox_debits WHERE created_at >= $2) d"
        " FULL OUTER JOIN (SELECT * FROM payments WHERE invoice_id = ANY($1)) p"
        "   ON p.idempotency_key = d.idempotency_key"
        " WHERE d.idempotency_key IS NULL OR p.idempotency_key IS NULL"
        "   OR d.id IS DISTINCT FROM p.processor_reference OR d.amount_cents <> p.amount_cents"
        "   OR d.account_last4 <> p.account_last4 OR (d.status = 'declined') <> (p.status = 'declined')",
        invoice_ids,
        since,
    )
    counts = await pool.fetchrow(
        "SELECT (SELECT count(*) FROM payments WHERE invoice_id = ANY($1)) AS payments,"
        " (SELECT count(*) FROM sandbox_debits WHERE created_at >= $2) AS debits",
        invoice_ids,
        since,
    )
    debited = sum(1 for r in per_invoice if r["debits"])
    return [
        Promise(
            "0 payments doubled",
            f"{debited} invoices debited: {len(doubled)} with two live debits,"
            f" {len(unmatched)} whose debits differ from their taken payments,"
            f" {len(unrecorded)} debits no payment recorded",
            not doubled and not unmatched and not unrecorded,
            ", ".join(
                [f"{r['invoice_id']}: {r['debits']} debits, {r['taken']} taken" for r in unmatched[:5]]
                + [f"unrecorded {r['key']}" for r in unrecorded[:5]]
            ),
        ),
        Promise(
            "processor debits agree with payments row for row",
            f"{counts['debits']} processor debits / {counts['payments']} payments, {len(mismatched)} differ",
            not mismatched,
            ", ".join(r["key"] for r in mismatched[:5]),
        ),
    ]


async def _history_audit_keys(client: Client, workflow_id: str, run_id: str) -> Counter[str]:
    """Event keys of every audit row the run's completed activities wrote, decoded from its history:
    the audit activity's own, and those the resolve, send, check and debit activities write in the
    same transaction as their effect."""
    scheduled: dict[int, tuple[str, Any]] = {}
    keys: Counter[str] = Counter()
    prefix = f"{workflow_id}/{run_id}"
    inputs = {
        AUDIT_ACTIVITY: AuditEventInput,
        opts.SEND_CODE: SendCodeRequest,
        opts.CHECK_CODE: CheckCodeRequest,
        opts.RESOLVE_PAYER: None,
        DEBIT_ACTIVITY: ProcessorDebitRequest,
        SCREEN_ACTIVITY: ScreenAccountRequest,
    }
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            name = attrs.activity_type.name
            if name == opts.SUBMIT_SCREENED_DEBIT:  # the folded debit under its own name (issue 20)
                name = DEBIT_ACTIVITY
            if name in inputs:
                kind = inputs[name]
                decoded = None
                if kind is not None:
                    [decoded] = await client.data_converter.decode(attrs.input.payloads, [kind])
                scheduled[event.event_id] = (name, decoded)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            failed = event.activity_task_failed_event_attributes
            name, request = scheduled.get(failed.scheduled_event_id, ("", None))
            info = failed.failure.application_failure_info
            if name == DEBIT_ACTIVITY and info.type in SCREEN_REFUSALS:
                # The debit's screening refused the account; its details say if it validated first.
                details = await client.data_converter.decode(info.details.payloads)
                if details and isinstance(details[0], dict) and details[0].get("validated_now"):
                    keys[f"account-validation/{run_id}/{request.screen_seq}"] += 1
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = event.activity_task_completed_event_attributes
            if done.scheduled_event_id not in scheduled:
                continue
            name, request = scheduled[done.scheduled_event_id]
            if name == AUDIT_ACTIVITY:
                keys[request.event_key] += 1
            elif name == opts.RESOLVE_PAYER:
                [resolution] = await client.data_converter.decode(done.result.payloads, [PayerResolution])
                opening = {
                    PaymentStatus.AWAITING_PAYMENT: "OTP_NOT_REQUIRED",
                    PaymentStatus.NO_CONTACT_METHOD: "NO_CONTACT_METHOD",
                    PaymentStatus.LOCKED: "OTP_LOCKED",
                }.get(resolution.opening_status)
                for event_type in ("ATTEMPT_STARTED", "PAYER_RESOLVED", *([opening] if opening else [])):
                    keys[f"{prefix}/open/{event_type}"] += 1
            elif name == opts.SEND_CODE:
                keys[f"{prefix}/send/{request.send_seq}/OTP_SENT"] += 1
            elif name == opts.CHECK_CODE:
                [checked] = await client.data_converter.decode(done.result.payloads, [CheckCodeResult])
                verdict = "OTP_VERIFIED" if checked.ok else "OTP_VERIFY_FAILED"
                keys[f"{prefix}/check/{request.check_seq}/{verdict}"] += 1
                if checked.locked_until is not None:
                    keys[f"{prefix}/check/{request.check_seq}/OTP_LOCKED"] += 1
            elif name == SCREEN_ACTIVITY:
                [screened] = await client.data_converter.decode(done.result.payloads, [ScreenAccountResult])
                if screened.validated_now:
                    keys[f"account-validation/{run_id}/{request.screen_seq}"] += 1
            elif name == DEBIT_ACTIVITY:
                [receipt] = await client.data_converter.decode(done.result.payloads, [PaymentReceipt])
                if receipt.account_validated_now:  # screened inside the debit (issue 13)
                    keys[f"account-validation/{run_id}/{request.screen_seq}"] += 1
                if receipt.payment_id:
                    outcome = "PAYMENT_ACCEPTED" if receipt.accepted else "PAYMENT_DECLINED"
                    keys[f"{receipt.payment_id}/PAYMENT_SUBMITTED"] += 1
                    keys[f"{receipt.payment_id}/{outcome}"] += 1
    return keys


async def check_audit(
    client: Client, pool: asyncpg.Pool, invoice_ids: list[str], *, audit_key: bytes
) -> list[Promise]:
    # The attempts' rows; a payment's own workflow (settlement, returns) keeps its own account.
    rows = await pool.fetch(
        "SELECT workflow_id, run_id, event_key FROM audit_events WHERE invoice_id = ANY($1)"
        " AND workflow_id LIKE 'pay-invoice-%'",
        invoice_ids,
    )
    stored: dict[tuple[str, str], Counter[str]] = {}
    for row in rows:
        stored.setdefault((row["workflow_id"], row["run_id"]), Counter())[row["event_key"]] += 1
    runs = set(stored)
    for invoice_id in invoice_ids:
        with_runs = client.list_workflows(f'WorkflowId = "{workflow_id_for(invoice_id)}"')
        async for wf in with_runs:
            runs.add((wf.id, wf.run_id))
    lost = extra = expected_total = 0
    examples: list[str] = []
    for workflow_id, run_id in sorted(runs):
        try:
            expected = await _history_audit_keys(client, workflow_id, run_id)
        except RPCError as exc:
            examples.append(f"{run_id}: no history ({exc})")
            lost += 1
            continue
        have = stored.get((workflow_id, run_id), Counter())
        expected_total += sum(expected.values())
        run_lost = sum((expected - have).values())
        run_extra = sum((have - expected).values())
        # Event keys are unique in the table, so a row stored twice under one key cannot exist: a
        # doubled write is a second row under another key, one the history does not explain.
        lost, extra = lost + run_lost, extra + run_extra
        if (run_lost or run_extra) and len(examples) < 5:
            which = sorted((expected - have) + (have - expected))[:3]
            examples.append(
                f"{workflow_id}/{run_id}: lost {run_lost}, unexplained {run_extra} ({', '.join(which)})"
            )
    chains_bad = [i for i in invoice_ids if not await chain_ok(pool, i, key=audit_key)]
    return [
        Promise(
            "0 audit rows lost or doubled (vs workflow history)",
            f"{len(rows)} rows / {expected_total} in histories of {len(runs)} runs;"
            f" lost {lost}, unexplained (doubled or forged) {extra}",
            lost == extra == 0 and expected_total > 0,
            "; ".join(examples),
        ),
        Promise(
            "every audit chain verifies",
            f"{len(invoice_ids) - len(chains_bad)}/{len(invoice_ids)}",
            not chains_bad,
            ", ".join(chains_bad[:5]),
        ),
    ]


@dataclass(frozen=True)
class CodeSend:
    """One send of a code as PostgreSQL recorded it."""

    workflow_id: str
    run_id: str
    send_seq: int
    destination_masked: str
    code_digest: bytes
    provider: str | None
    provider_message_id: str | None
    sent: bool


async def load_sends(pool: asyncpg.Pool, invoice_ids: list[str]) -> list[CodeSend]:
    rows = await pool.fetch(
        "SELECT workflow_id, run_id, send_seq, destination_masked, code_digest, provider,"
        " provider_message_id, sent_at IS NOT NULL AS sent FROM otp_challenges WHERE invoice_id = ANY($1)",
        invoice_ids,
    )
    return [CodeSend(**dict(row)) for row in rows]


@dataclass
class CodeLedger:
    """Each delivered message tied to the send whose stored digest its code matches."""

    by_send: dict[tuple[str, int], list[Delivered]]
    orphans: list[Delivered]  # a code no recorded send stands behind: a second code
    misrecorded: list[str]  # sends whose recorded message id is not one the provider delivered for them


def tie_messages_to_sends(messages: list[Delivered], sends: list[CodeSend], hmac_key: bytes) -> CodeLedger:
    by_mask: dict[str, list[CodeSend]] = {}
    for send in sends:
        by_mask.setdefault(send.destination_masked, []).append(send)
    ledger = CodeLedger({}, [], [])
    for message in messages:
        channel = Channel.EMAIL if "@" in message.recipient else Channel.SMS
        owner = next(
            (
                send
                for send in by_mask.get(mask_destination(channel, message.recipient), [])
                if message.code
                and hmac.compare_digest(
                    code_digest(hmac_key, send.run_id, send.send_seq, message.code), send.code_digest
                )
            ),
            None,
        )
        if owner is None:
            ledger.orphans.append(message)
            continue
        ledger.by_send.setdefault((owner.run_id, owner.send_seq), []).append(message)
        if message.idempotency_key is not None and message.idempotency_key != (
            f"{owner.workflow_id}/{owner.run_id}/code/{owner.send_seq}"
        ):
            ledger.misrecorded.append(f"{message.message_id} carried {message.idempotency_key}")
    for send in sends:
        delivered = ledger.by_send.get((send.run_id, send.send_seq), [])
        recorded_elsewhere = send.provider_message_id not in {m.message_id for m in delivered}
        if send.sent and send.provider in ("sendgrid", "twilio") and recorded_elsewhere:
            ledger.misrecorded.append(f"{send.run_id}#{send.send_seq} recorded {send.provider_message_id}")
    return ledger


def check_codes(
    records: list[CustomerRecord],
    inbox: AcceptedMessages,
    broken: str,
    fault_times: list[tuple[float, str]],
    sends: list[CodeSend],
    hmac_key: bytes,
) -> list[Promise]:
    needing = [r for r in records if r.session_id]
    without = [r.invoice.invoice_id for r in needing if not r.code_obtained]
    moved = sum(1 for r in needing if r.moved_channel)
    on_broken = sum(1 for r in needing if r.plan.first_channel == broken)
    messages = inbox.messages()
    ledger = tie_messages_to_sends(messages, sends, hmac_key)
    repeated = sum(1 for delivered in ledger.by_send.values() if len(delivered) > 1)
    faults: dict[str, Any] = dict(inbox.faults)

    def after_fault(message: Delivered) -> str:
        before = [(message.at - t, what) for t, what in fault_times if t <= message.at + 0.5]
        if not before:
            return "before any fault"
        gap, what = min(before)
        return f"delivered {gap:+.1f}s after {what}"

    return [
        Promise(
            "every code request ends delivered or moved to the other channel",
            f"{len(needing) - len(without)}/{len(needing)} got a code; {moved}/{on_broken} moved off {broken}",
            not without and moved == on_broken,
            ", ".join(without[:5]),
        ),
        Promise(
            "no customer gets two codes for one request",
            f"{len(messages)} messages for {len(ledger.by_send)} sends: {len(ledger.orphans)} with a code"
            f" no send made, {len(ledger.misrecorded)} misrecorded, {repeated} sends delivered twice"
            f" with the same code; provider faults {faults}",
            bool(messages or not needing) and not ledger.orphans and not ledger.misrecorded,
            "; ".join(
                [
                    f"{m.provider} {m.message_id} to {m.recipient} ({after_fault(m)})"
                    for m in ledger.orphans[:3]
                ]
                + ledger.misrecorded[:3]
            ),
        ),
    ]


def retries_seen(records: list[CustomerRecord]) -> Promise:
    """Not a promise: what customers saw while things broke (each retried with the same key)."""
    errors = sum(r.server_errors for r in records)
    retried = sum(r.retried_requests for r in records)
    return Promise(
        "(info) customer requests retried during faults",
        f"{retried} retries, {errors} of them after a 5xx",
        True,
    )
