"""The campaign's lifecycle phase (SPEC §9): debits across the sandbox's test accounts while the
processor drops and duplicates its webhooks, then reconciliation, then the lifecycle's promises.

Each debit goes the customer's way (portal, code, payment) with one of the test accounts. The
processor settles, fails or returns them on a short clock; a share of its webhooks never arrives
and another share arrives twice. Once the processor has nothing left to say, reconciliation runs
as `portalpay ops reconcile` runs it, and every payment, invoice and audit row is compared with
what the processor says happened.
"""

import asyncio
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from rich.console import Console
from temporalio.client import Client

from domain.ach_payment import ReconcileReport
from infra.pay_links import signer_from_settings
from infra.settings import Settings
from sandbox_processor.ledger import FAILS_R01, RETURNS_R10, VALIDATION_FAILS
from tools.bench.driver import PAYMENT_BODY, SANDBOX_ACCOUNT, seed_invoices
from tools.chaos.checks import Promise
from tools.chaos.customers import Customer, CustomerRecord, Plan
from tools.chaos.lifecycle_checks import (
    LifecycleFacts,
    disagreements,
    lifecycle_promises,
    load_facts,
    load_statuses,
)
from tools.standins.faulty_providers import AcceptedMessages
from workers.schedules import reconcile_now

RECONCILE_WITHIN = 180.0


@dataclass
class LifecyclePhaseConfig:
    debits: int = 200
    concurrency: int = 50
    drop_rate: float = 0.3
    duplicate_rate: float = 0.2
    # Short, so the phase waits seconds for what takes days at a bank.
    settlement_seconds: float = 3.0
    late_return_seconds: float = 6.0

    def processor_env(self) -> dict[str, str]:
        """What the stack's sandbox processor runs with; nothing when the phase is off."""
        if not self.debits:
            return {}
        return {
            "SANDBOX_WEBHOOK_DROP_RATE": str(self.drop_rate),
            "SANDBOX_WEBHOOK_DUPLICATE_RATE": str(self.duplicate_rate),
            "SANDBOX_SETTLEMENT_SECONDS": str(self.settlement_seconds),
            "SANDBOX_LATE_RETURN_SECONDS": str(self.late_return_seconds),
        }


@dataclass(frozen=True)
class SandboxAccount:
    """A SPEC §9 test account and how it ends: the attempt's status, its payments' statuses."""

    name: str
    account_number: str
    attempt_ends: str
    payments_end: tuple[str, ...]  # empty: nothing was debited


SETTLES = SandboxAccount("settles", SANDBOX_ACCOUNT, "PAID", ("settled",))
FAILS = SandboxAccount("fails R01", FAILS_R01, "PAID", ("failed",))
RETURNED = SandboxAccount("returned R10", RETURNS_R10, "PAID", ("returned",))
NOT_VALIDATED = SandboxAccount("validation fails", VALIDATION_FAILS, "AWAITING_PAYMENT", ())
DECLINES = tuple(
    SandboxAccount(f"declined {number}", number, "DECLINED", ("declined",))
    for number in ("000111111113", "000222222227", "000333333335")
)
# Mostly debits that settle, as in life; every other account in each run of this mix.
MIX = (SETTLES,) * 5 + (FAILS, RETURNED) * 2 + (NOT_VALIDATED, *DECLINES)


def routing_number(n: int) -> str:
    """A routing number passing the ABA checksum, one per customer: an R10 return blocks the bank
    account (routing + account), which must not refuse the next customer's debit."""
    prefix = f"011{n % 100_000:05d}"
    total = sum(int(d) * w for d, w in zip(prefix, (3, 7, 1, 3, 7, 1, 3, 7), strict=True))
    return prefix + str(-total % 10)


class SandboxAccountCustomer(Customer):
    def __init__(
        self,
        http: httpx.AsyncClient,
        record: CustomerRecord,
        inbox: AcceptedMessages,
        rng: random.Random,
        account: SandboxAccount,
        routing: str,
    ) -> None:
        super().__init__(http, record, inbox, rng)
        self.account = account
        self.routing = routing

    def payment_body(self) -> dict[str, Any]:
        return {**PAYMENT_BODY, "routing_number": self.routing, "account_number": self.account.account_number}


@dataclass
class Debtor:
    record: CustomerRecord
    account: SandboxAccount


async def wait_processor_quiet(pool: asyncpg.Pool, within: float) -> bool:
    """Until no debit has news to come (settlement, failure, late return) and every webhook not
    dropped on purpose has been answered."""
    deadline = time.monotonic() + within
    while True:
        row = await pool.fetchrow(
            "SELECT (SELECT count(*) FROM sandbox_debits WHERE status = 'processing'"
            "   OR (status = 'settled' AND scenario = 'return_r10')) AS moving,"
            " (SELECT count(*) FROM sandbox_deliveries WHERE delivered_at IS NULL AND NOT dropped) AS unsent"
        )
        if row["moving"] == row["unsent"] == 0:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(1.0)


async def wait_agreement(
    pool: asyncpg.Pool, client: Client, invoice_ids: list[str], within: float
) -> LifecycleFacts:
    """Reconciliation has signalled; the workflows apply in a moment. Bounded: what is still off
    after `within` is what the checks report."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not disagreements(await load_statuses(pool, invoice_ids), workflows=False):
            break
        await asyncio.sleep(1.0)
    while True:
        facts = await load_facts(pool, client, invoice_ids)
        if not disagreements(facts.payments) or time.monotonic() > deadline:
            return facts
        await asyncio.sleep(1.0)


def check_test_accounts(debtors: list[Debtor], facts: LifecycleFacts) -> Promise:
    payments: dict[str, list[str]] = defaultdict(list)
    for p in facts.payments:
        payments[p.invoice_id].append(p.ours)
    reached: Counter[str] = Counter()
    wrong = []
    for d in debtors:
        invoice_id = d.record.invoice.invoice_id
        got = (d.record.final_status, tuple(sorted(payments[invoice_id])))
        if got == (d.account.attempt_ends, d.account.payments_end):
            reached[d.account.name] += 1
        else:
            wrong.append(f"{invoice_id} {d.account.name}: {got} {d.record.notes[-1:]}")
    total = Counter(d.account.name for d in debtors)
    return Promise(
        "every test account's debit ends as SPEC §9 says",
        ", ".join(f"{name} {reached[name]}/{n}" for name, n in total.items()),
        not wrong,
        "; ".join(wrong[:5]),
    )


async def webhook_faults_seen(
    pool: asyncpg.Pool, invoice_ids: list[str], report: ReconcileReport | None
) -> Promise:
    """Not a promise: how many webhooks the processor dropped or sent twice, and what reconciliation
    delivered in their place (it breaks only when reconciliation did not finish)."""
    row = await pool.fetchrow(
        "SELECT count(*) AS events, count(*) FILTER (WHERE dropped) AS dropped,"
        " count(*) FILTER (WHERE sent > 1) AS duplicated FROM"
        " (SELECT e.seq, bool_or(dl.dropped) AS dropped, count(*) FILTER (WHERE NOT dl.dropped) AS sent"
        "  FROM sandbox_events e JOIN sandbox_deliveries dl ON dl.event_seq = e.seq"
        "  JOIN sandbox_debits d ON d.id = e.debit_id JOIN payments p ON p.idempotency_key = d.idempotency_key"
        "  WHERE p.invoice_id = ANY($1) GROUP BY e.seq) per_event",
        invoice_ids,
    )
    events = row["events"] or 1
    ran = (
        f"reconciliation read {report.events_seen}, delivered {len(report.delivered)},"
        f" {len(report.mismatches)} mismatches at its run"
        if report is not None
        else f"reconciliation did not finish within {RECONCILE_WITHIN:.0f} s"
    )
    return Promise(
        "reconciliation ran after webhooks dropped and duplicated",
        f"{row['events']} events: {row['dropped']} dropped ({row['dropped'] / events:.0%}),"
        f" {row['duplicated']} sent twice; {ran}",
        report is not None,
    )


async def run_lifecycle_phase(
    cfg: LifecyclePhaseConfig,
    *,
    http: httpx.AsyncClient,
    pool: asyncpg.Pool,
    client: Client,
    settings: Settings,
    inbox: AcceptedMessages,
    rng: random.Random,
    console: Console,
    earlier_invoices: list[str],
) -> list[Promise]:
    """`earlier_invoices`: the campaign's own attempts, whose debits the promises cover too."""
    invoices = await seed_invoices(
        pool, cfg.debits, first=await pool.fetchval("SELECT count(*) FROM contacts")
    )
    signer = signer_from_settings(settings)
    accounts = [MIX[i % len(MIX)] for i in range(cfg.debits)]
    rng.shuffle(accounts)
    debtors = []
    for inv, account in zip(invoices, accounts, strict=True):
        inv.token = signer.issue(inv.invoice_id)
        debtors.append(Debtor(CustomerRecord(inv, Plan("pay", rng.choice(("email", "sms")))), account))
    gate = asyncio.Semaphore(cfg.concurrency)

    async def pay(n: int, debtor: Debtor) -> None:
        customer = SandboxAccountCustomer(
            http, debtor.record, inbox, random.Random(rng.random()), debtor.account, routing_number(n)
        )
        async with gate:
            await customer.run()

    started = time.monotonic()
    console.print(
        f"lifecycle: {cfg.debits} debits across the test accounts, webhooks {cfg.drop_rate:.0%} dropped"
        f" and {cfg.duplicate_rate:.0%} duplicated…"
    )
    await asyncio.gather(*(pay(n, d) for n, d in enumerate(debtors)))
    paid_in = time.monotonic() - started
    quiet = await wait_processor_quiet(pool, within=cfg.settlement_seconds + cfg.late_return_seconds + 120)
    try:
        report: ReconcileReport | None = await asyncio.wait_for(
            reconcile_now(client, settings.temporal_task_queue), RECONCILE_WITHIN
        )
    except TimeoutError:
        report = None  # no worker ran it: the promises below say what stayed undelivered
    invoice_ids = [d.record.invoice.invoice_id for d in debtors] + earlier_invoices
    facts = await wait_agreement(pool, client, invoice_ids, within=60.0)
    console.print(
        f"lifecycle: paid in {paid_in:.0f} s; processor {'quiet' if quiet else 'STILL MOVING'};"
        f" checked {time.monotonic() - started:.0f} s after the first debit"
    )
    return [
        check_test_accounts(debtors, facts),
        *lifecycle_promises(facts),
        await webhook_faults_seen(pool, invoice_ids, report),
    ]
