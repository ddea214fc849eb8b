"""The campaign's attack phase (issue 10): the attacks, then the money and the answers judged.

`run_attacks` runs after the customers have settled, on the same stack. Money is judged over the
whole run's processor ledger (the campaign has a database of its own): a debit no payment row owns,
or two live debits of one invoice. The answers are the attacks' own: a 5xx to any of them breaks
the promise (the broken channel's provider refusal, relayed as 502 DeliveryFailed, is counted
apart: it is the provider's answer).
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import httpx
from rich.console import Console
from temporalio.client import Client

from infra.pay_links import signer_from_settings
from infra.settings import Settings
from tools.bench.driver import SANDBOX_ACCOUNT, BenchInvoice
from tools.chaos.arena import AnswerTally, Arena, AttackSetupFailed
from tools.chaos.attacks import payer_change_mid_attempt, plaintext_starts, poison_bank_details, pump_codes
from tools.chaos.checks import Promise
from tools.chaos.customers import DECLINING_ACCOUNT
from tools.chaos.log_secrets import RunSecrets
from tools.chaos.send_caps import SendCaps
from tools.standins.faulty_providers import AcceptedMessages, ProviderFaults

# Live debits: two of these for one invoice is money taken twice.
LIVE = ("processing", "settled")


@dataclass
class AttackConfig:
    pump_invoices: int = 4
    pump_rounds: int = 6
    # How long the customer waits on a workflow id an insider's plaintext run holds.
    customer_wait: float = 45.0


async def run_attacks(
    http: httpx.AsyncClient,
    pool: asyncpg.Pool,
    client: Client,
    settings: Settings,
    faults: ProviderFaults,
    task_queue: str,
    run_secrets: RunSecrets,
    console: Console,
    cfg: AttackConfig | None = None,
) -> list[Promise]:
    cfg = cfg or AttackConfig()
    inbox, broken_channel = faults.log, faults.broken_channel
    arena = Arena(
        http=http,
        pool=pool,
        client=client,
        signer=signer_from_settings(settings),
        inbox=inbox,
        task_queue=task_queue,
        staff_token=settings.secret("staff_api_token"),
        broken_channel=broken_channel,
        working_channel="sms" if broken_channel == "email" else "email",
        run_secrets=run_secrets,
    )
    promises: list[Promise] = []
    attacks: list[tuple[str, Callable[[], Awaitable[tuple[Promise, list[str]]]]]] = [
        ("poison bank details", lambda: poison_bank_details(arena, settings)),
        ("plaintext starts", lambda: plaintext_starts(arena, customer_wait=cfg.customer_wait)),
        (
            "code pumping",
            lambda: pump_codes(
                arena,
                SendCaps.from_settings(settings),
                invoices=cfg.pump_invoices,
                rounds=cfg.pump_rounds,
                hmac_key=settings.secret("otp_hmac_key").encode(),
            ),
        ),
        ("payer change", lambda: payer_change_mid_attempt(arena)),
    ]
    console.print(f"attacks at once: {', '.join(name for name, _ in attacks)}…")

    async def attempt(name: str, attack: Callable[[], Awaitable[tuple[Promise, list[str]]]]) -> Promise:
        try:
            promise, _ = await attack()
        except AttackSetupFailed as exc:
            return Promise(f"{name}: the attack could be set up", "no", False, str(exc))
        return promise

    # Each attack has invoices, customers and destinations of its own: they can run together.
    promises += await asyncio.gather(*(attempt(name, attack) for name, attack in attacks))
    promises += await money_promises(pool)
    promises.append(answers_promise(arena.tally))
    return promises


async def money_promises(pool: asyncpg.Pool, *, since: datetime | None = None) -> list[Promise]:
    """Over the run's whole processor ledger: the customers' debits and the attacks' alike.

    The campaign's database is its own; `since` narrows a shared one (the checks' own tests)."""
    since = since or datetime.min.replace(tzinfo=UTC)
    unrecorded = await pool.fetch(
        "SELECT d.idempotency_key AS key FROM sandbox_debits d"
        " LEFT JOIN payments p ON p.idempotency_key = d.idempotency_key"
        " WHERE p.id IS NULL AND d.status <> 'declined' AND d.created_at >= $1",
        since,
    )
    # By the invoice the processor was told (the debit's metadata), not through payment rows: the
    # database allows one open payment per invoice, so counting through them could never find two.
    doubled = await pool.fetch(
        "SELECT d.metadata->>'invoice_id' AS invoice_id, count(*) AS live FROM sandbox_debits d"
        " WHERE d.status = ANY($1) AND d.created_at >= $2 AND d.metadata ? 'invoice_id'"
        " GROUP BY 1 HAVING count(*) > 1",
        list(LIVE),
        since,
    )
    totals = await pool.fetchrow(
        "SELECT count(*) AS debits, count(DISTINCT p.invoice_id) AS invoices FROM sandbox_debits d"
        " LEFT JOIN payments p ON p.idempotency_key = d.idempotency_key WHERE d.created_at >= $1",
        since,
    )
    return money_verdict(
        [r["key"] for r in unrecorded],
        {r["invoice_id"]: r["live"] for r in doubled},
        debits=totals["debits"],
        invoices=totals["invoices"],
    )


def money_verdict(
    unrecorded: list[str], doubled: dict[str, int], *, debits: int, invoices: int
) -> list[Promise]:
    return [
        Promise(
            "unrecorded debits 0",
            f"unrecorded debits {len(unrecorded)} (of {debits} processor debits in the run)",
            not unrecorded and debits > 0,
            ", ".join(unrecorded[:5]),
        ),
        Promise(
            "double debits 0",
            f"double debits {len(doubled)} (of {invoices} invoices debited)",
            not doubled and invoices > 0,
            ", ".join(f"{i}: {n} live debits" for i, n in list(doubled.items())[:5]),
        ),
    ]


def answers_promise(tally: AnswerTally) -> Promise:
    four = sum(n for status, n in tally.statuses.items() if 400 <= status < 500)
    return Promise(
        "5xx 0 to the attacks",
        f"5xx {len(tally.server_errors)} of {tally.total()} requests ({four} 4xx refusals;"
        f" {tally.provider_refusals} x 502 DeliveryFailed from the broken channel's provider, counted apart;"
        f" {len(tally.unanswered)} unanswered)",
        not tally.server_errors and not tally.unanswered and tally.total() > 0,
        "; ".join(tally.server_errors[:5] + tally.unanswered[:5]),
    )


def campaign_secrets(invoices: Sequence[BenchInvoice]) -> RunSecrets:
    """What the customers' part of the run used: their links, emails, phones and typed accounts."""
    found = RunSecrets()
    for inv in invoices:
        found.add("pay-link token", [inv.token])
        found.add("email", [inv.email])
        found.add("phone", [inv.phone, inv.phone.lstrip("+")])
    found.add("account number", [SANDBOX_ACCOUNT, DECLINING_ACCOUNT])
    return found


def add_delivered_codes(found: RunSecrets, inbox: AcceptedMessages) -> None:
    """The plaintext codes, as only the providers saw them (PostgreSQL keeps keyed digests)."""
    found.add("code", (m.code for m in inbox.messages()))
