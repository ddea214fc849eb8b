"""The lifecycle phase's promises (SPEC §9): statuses agree with the processor, invoices follow their
payments, and no processor event took effect twice.

What the checks look at is loaded once into `LifecycleFacts`; each check is a plain function of
those facts, so a test can hand it a world where the promise is broken.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import asyncpg
from temporalio.client import Client
from temporalio.service import RPCError

from domain.ach_payment import ach_workflow_id
from tools.chaos.checks import Promise
from workflows import search_attributes as sa

OUTCOME_AUDITS = ("PAYMENT_SETTLED", "PAYMENT_FAILED", "PAYMENT_RETURNED")
# The audit rows a payment's processor outcome calls for: a return implies its settlement first.
AUDITS_FOR = {
    "settled": {"PAYMENT_SETTLED"},
    "failed": {"PAYMENT_FAILED"},
    "returned": {"PAYMENT_SETTLED", "PAYMENT_RETURNED"},
}
# Written by the attempt before the lifecycle names it `processing`.
_PROCESSING = {"accepted", "submitting", "processing"}


@dataclass(frozen=True)
class PaymentFacts:
    payment_id: str
    invoice_id: str
    amount_cents: int
    ours: str  # payments.status, `accepted`/`submitting` read as `processing`
    processor: str | None  # the processor's debit status; None: it has no debit under our key
    workflow: str | None = None  # the AchPaymentWorkflow's PaymentStatus, lower case; None: no workflow


@dataclass(frozen=True)
class InvoiceFacts:
    invoice_id: str
    status: str
    amount_cents: int
    balance_cents: int


@dataclass
class LifecycleFacts:
    payments: list[PaymentFacts] = field(default_factory=list)
    invoices: list[InvoiceFacts] = field(default_factory=list)
    processor_events: list[str] = field(default_factory=list)  # the processor's event ids for these debits
    stored_events: list[str] = field(default_factory=list)  # one entry per `processor_events` row
    outcome_audits: list[tuple[str, str]] = field(default_factory=list)  # (payment id, event type) per row


async def load_statuses(pool: asyncpg.Pool, invoice_ids: list[str]) -> list[PaymentFacts]:
    rows = await pool.fetch(
        "SELECT p.id, p.invoice_id, p.amount_cents, p.status, d.status AS processor FROM payments p"
        " LEFT JOIN sandbox_debits d ON d.idempotency_key = p.idempotency_key"
        " WHERE p.invoice_id = ANY($1) ORDER BY p.id",
        invoice_ids,
    )
    return [
        PaymentFacts(
            payment_id=r["id"],
            invoice_id=r["invoice_id"],
            amount_cents=r["amount_cents"],
            ours="processing" if r["status"] in _PROCESSING else r["status"],
            processor=r["processor"],
        )
        for r in rows
    ]


async def _workflow_status(client: Client, payment_id: str) -> str | None:
    try:
        desc = await client.get_workflow_handle(ach_workflow_id(payment_id)).describe()
    except RPCError:
        return None
    value = desc.typed_search_attributes.get(sa.PAYMENT_STATUS)
    return str(value).lower() if value else None


async def load_facts(pool: asyncpg.Pool, client: Client, invoice_ids: list[str]) -> LifecycleFacts:
    payments = []
    for p in await load_statuses(pool, invoice_ids):
        taken = p.processor not in (None, "declined")
        workflow = await _workflow_status(client, p.payment_id) if taken else None
        payments.append(PaymentFacts(**{**p.__dict__, "workflow": workflow}))
    invoices = await pool.fetch(
        "SELECT id, status, amount_cents, balance_cents FROM invoices WHERE id = ANY($1) ORDER BY id",
        invoice_ids,
    )
    events = await pool.fetch(
        "SELECT e.id FROM sandbox_events e JOIN sandbox_debits d ON d.id = e.debit_id"
        " JOIN payments p ON p.idempotency_key = d.idempotency_key WHERE p.invoice_id = ANY($1)",
        invoice_ids,
    )
    stored = await pool.fetch(
        "SELECT pe.id FROM processor_events pe JOIN payments p ON p.processor_reference = pe.debit_id"
        " WHERE p.invoice_id = ANY($1)",
        invoice_ids,
    )
    audits = await pool.fetch(
        "SELECT details->>'payment_id' AS payment_id, event_type FROM audit_events"
        " WHERE invoice_id = ANY($1) AND event_type = ANY($2::text[])",
        invoice_ids,
        list(OUTCOME_AUDITS),
    )
    return LifecycleFacts(
        payments=payments,
        invoices=[
            InvoiceFacts(r["id"], r["status"], r["amount_cents"], r["balance_cents"]) for r in invoices
        ],
        processor_events=[r["id"] for r in events],
        stored_events=[r["id"] for r in stored],
        outcome_audits=[(r["payment_id"], r["event_type"]) for r in audits],
    )


def disagreements(payments: list[PaymentFacts], *, workflows: bool = True) -> list[str]:
    """Payments whose status, or (with `workflows`) whose workflow's, is not the processor's."""
    out = []
    for p in payments:
        if p.processor is None:
            out.append(f"{p.payment_id}: ours {p.ours}, the processor has no debit")
        elif p.ours != p.processor:
            out.append(f"{p.payment_id}: ours {p.ours}, processor {p.processor}")
        elif workflows and p.processor != "declined" and p.workflow != p.processor:
            out.append(f"{p.payment_id}: workflow {p.workflow}, processor {p.processor}")
    return out


def check_statuses(facts: LifecycleFacts) -> Promise:
    wrong = disagreements(facts.payments)
    by_status = Counter(p.processor for p in facts.payments)
    return Promise(
        "every payment's status equals the processor's",
        f"{len(facts.payments) - len(wrong)}/{len(facts.payments)} agree"
        f" ({', '.join(f'{n} {s}' for s, n in sorted(by_status.items(), key=lambda i: str(i[0])))})",
        bool(facts.payments) and not wrong,
        "; ".join(wrong[:5]),
    )


def expected_invoice(invoice: InvoiceFacts, payments: list[PaymentFacts]) -> tuple[str, int]:
    """(status, balance) the invoice's payments call for: a settled debit pays it, a processing one
    holds its amount, a failed, returned, canceled or declined one owes it again."""
    if any(p.ours == "settled" for p in payments):
        return "paid", 0
    holding = sum(p.amount_cents for p in payments if p.ours == "processing")
    if holding:
        return "pending", max(invoice.amount_cents - holding, 0)
    return "open", invoice.amount_cents


def check_balances(facts: LifecycleFacts) -> Promise:
    by_invoice: dict[str, list[PaymentFacts]] = defaultdict(list)
    for p in facts.payments:
        by_invoice[p.invoice_id].append(p)
    wrong = []
    for inv in facts.invoices:
        status, balance = expected_invoice(inv, by_invoice[inv.invoice_id])
        if (inv.status, inv.balance_cents) != (status, balance):
            wrong.append(f"{inv.invoice_id}: {inv.status} {inv.balance_cents}, expected {status} {balance}")
    standing = Counter(inv.status for inv in facts.invoices)
    return Promise(
        "invoice balances add up",
        f"{len(facts.invoices) - len(wrong)}/{len(facts.invoices)} follow from their payments"
        f" ({', '.join(f'{n} {s}' for s, n in sorted(standing.items()))})",
        bool(facts.invoices) and not wrong,
        "; ".join(wrong[:5]),
    )


def check_events_once(facts: LifecycleFacts) -> Promise:
    """Each processor event stored once; one outcome audit row per outcome reached (the row and the
    balance change are one transaction, so a second PAYMENT_FAILED/RETURNED is a second restore)."""
    stored = Counter(facts.stored_events)
    twice_stored = sorted(i for i, n in stored.items() if n > 1)
    never_stored = sorted(set(facts.processor_events) - set(stored))
    audits = Counter(facts.outcome_audits)
    doubled = sorted(f"{p} {t} {n} times" for (p, t), n in audits.items() if n > 1)
    missing, unexplained = [], []
    expected_rows = 0
    for p in facts.payments:
        wanted = AUDITS_FOR.get(p.processor or "", set())
        expected_rows += len(wanted)
        missing += [f"{p.payment_id} no {t}" for t in sorted(wanted) if not audits[(p.payment_id, t)]]
        unexplained += [
            f"{p.payment_id} {t} while {p.processor}"
            for t in OUTCOME_AUDITS
            if t not in wanted and audits[(p.payment_id, t)]
        ]
    restores = sum(n for (_, t), n in audits.items() if t in ("PAYMENT_FAILED", "PAYMENT_RETURNED"))
    reopened = sum(1 for p in facts.payments if p.processor in ("failed", "returned"))
    problems = [*twice_stored, *doubled, *never_stored, *missing, *unexplained]
    return Promise(
        "0 events applied twice",
        f"{len(stored)} events stored / {len(set(facts.processor_events))} published:"
        f" {len(twice_stored)} stored twice, {len(never_stored)} never stored;"
        f" {sum(audits.values())} outcome audit rows / {expected_rows} outcomes: {len(doubled)} doubled,"
        f" {len(missing)} missing, {len(unexplained)} unexplained; {restores} balance restores"
        f" for {reopened} failed or returned payments",
        bool(facts.payments) and not problems and restores == reopened,
        "; ".join(problems[:5]),
    )


def lifecycle_promises(facts: LifecycleFacts) -> list[Promise]:
    return [check_statuses(facts), check_balances(facts), check_events_once(facts)]
