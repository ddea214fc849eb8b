"""The fault campaign behind `portalpay chaos` (`make chaos`) and its shortened form in `make test`.

Customers drive attempts through the portal while the worker is SIGKILLed at random moments,
PostgreSQL restarts (one crash, one fast shutdown) and the Temporal server restarts (a dev server
keeping its state in a SQLite file, SIGKILLed then SIGTERMed in turn, started again on the same
port); the email and SMS providers misbehave; then
the promises are checked, hostile input is thrown at the API, and a report table says which held.
"""

import asyncio
import contextlib
import random
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from infra.db import create_pool
from infra.pay_links import signer_from_settings
from infra.settings import STATE_DIR
from infra.temporal import connect
from tools.bench.driver import seed_invoices
from tools.bench.stack import Stack, StackConfig
from tools.bench.suite import settings_from_env
from tools.chaos.attack_phase import AttackConfig, add_delivered_codes, campaign_secrets, run_attacks
from tools.chaos.checks import (
    Promise,
    check_audit,
    check_codes,
    check_outcomes,
    check_payments,
    check_settled,
    load_sends,
    retries_seen,
    wait_settled,
)
from tools.chaos.customers import Customer, CustomerRecord, make_plans
from tools.chaos.hostile import brute_force, fuzz_api
from tools.chaos.lifecycle_phase import LifecyclePhaseConfig, run_lifecycle_phase
from tools.chaos.log_secrets import check_logs
from tools.chaos.webhook_phase import WebhookPhase, WebhookPhaseConfig, webhook_phase
from tools.standins.faulty_providers import ProviderFaults


@dataclass
class CampaignConfig:
    attempts: int = 500
    concurrency: int = 500
    worker_kills: int = 10
    pg_restarts: int = 2
    server_restarts: int = 1
    fault_rate: float = 0.3
    broken_channel: str = "sms"
    schemathesis_calls: int = 10_000
    brute_force_invoices: int = 5
    fault_gap: tuple[float, float] = (2.0, 8.0)
    attacks: AttackConfig | None = field(default_factory=AttackConfig)  # None skips issue 10's attacks
    seed: int = field(default_factory=lambda: secrets.randbits(31))
    work_dir: Path = field(default_factory=lambda: (STATE_DIR / f"chaos-{int(time.time())}").resolve())
    lifecycle: LifecyclePhaseConfig = field(default_factory=LifecyclePhaseConfig)
    # SPEC §12: a loopback webhook receiver failing 30 % of tries; None skips it.
    webhooks: WebhookPhaseConfig | None = field(default_factory=WebhookPhaseConfig)


@dataclass
class CampaignReport:
    config: CampaignConfig
    promises: list[Promise]
    faults: list[str]
    wall_seconds: float

    @property
    def ok(self) -> bool:
        return all(p.held for p in self.promises)

    def table(self) -> Table:
        table = Table(title=f"Fault campaign (seed {self.config.seed}, {self.wall_seconds:.0f} s)")
        table.add_column("promise")
        table.add_column("measured")
        table.add_column("held")
        for p in self.promises:
            held = "[green]yes[/]" if p.held else f"[red]NO[/] {p.detail[:200]}"
            table.add_row(p.name, p.measured, held)
        return table


async def inject_faults(
    stack: Stack,
    cfg: CampaignConfig,
    in_flight: set[str],
    across_restart: set[str],
    rng: random.Random,
    log: list[str],
    times: list[tuple[float, str]],
) -> None:
    """SIGKILL the worker, restart PostgreSQL and the Temporal server while customers are in flight."""
    events = ["kill"] * cfg.worker_kills + ["pg"] * cfg.pg_restarts + ["temporal"] * cfg.server_restarts
    rng.shuffle(events)
    started = time.monotonic()
    pg_done = server_done = 0
    for event in events:
        await asyncio.sleep(rng.uniform(*cfg.fault_gap))
        at = f"t+{time.monotonic() - started:5.1f}s, {len(in_flight)} in flight"
        if event == "temporal":
            kill = server_done % 2 == 0
            across_restart.update(in_flight)
            times.append((time.monotonic(), "a Temporal server restart"))
            down = await stack.restart_temporal(kill=kill)
            server_done += 1
            log.append(f"{at}: Temporal server {'SIGKILLed' if kill else 'SIGTERMed'}, back in {down:.1f}s")
        elif event == "kill":
            assert stack.worker is not None
            times.append((time.monotonic(), "a worker SIGKILL"))
            stack.worker.kill()
            log.append(f"{at}: worker SIGKILLed")
            await asyncio.sleep(rng.uniform(0.2, 2.0))
            stack.worker.start()
        else:
            assert stack.postgres is not None
            immediate = pg_done % 2 == 0
            times.append((time.monotonic(), "a PostgreSQL restart"))
            await asyncio.to_thread(stack.postgres.restart, immediate=immediate)
            pg_done += 1
            log.append(f"{at}: PostgreSQL restarted ({'crash' if immediate else 'fast'})")


def resumed_across_restart(
    records: list[CustomerRecord], seen: dict[str, tuple[str, str]], across: set[str]
) -> Promise:
    """Attempts a customer was in the middle of when the Temporal server went down: none lost.

    Doubles are the ledger's and the audit trail's promises, which cover these attempts too.
    """
    mine = [r for r in records if r.invoice.invoice_id in across]
    lost = [
        f"{r.invoice.invoice_id} {r.plan.kind}→{seen.get(r.invoice.invoice_id, ('', '?'))} {r.notes[-1:]}"
        for r in mine
        if seen.get(r.invoice.invoice_id, ("", ""))[1] not in r.plan.expected
    ]
    return Promise(
        "attempts in flight across a Temporal server restart resume (0 lost)",
        f"{len(mine) - len(lost)}/{len(mine)} reached their outcome",
        bool(mine) and not lost,
        "; ".join(lost[:5]) if mine else "no attempt was in flight at the restart",
    )


async def run_campaign(cfg: CampaignConfig, console: Console) -> CampaignReport:
    started = time.monotonic()
    console.print(f"campaign seed {cfg.seed} (replay: --seed {cfg.seed})")
    rng = random.Random(cfg.seed)
    faults = ProviderFaults(
        fault_rate=cfg.fault_rate, broken_channel=cfg.broken_channel, seed=cfg.seed
    ).start()
    env = {
        **faults.env(),
        "OTP_RESEND_COOLDOWN_SECONDS": "1",
        "WORKER_GRACEFUL_SHUTDOWN_SECONDS": "2",
        **cfg.lifecycle.processor_env(),
        **(cfg.webhooks.env() if cfg.webhooks else {}),
    }
    stack = Stack(StackConfig(work_dir=cfg.work_dir, extra_env=env, persist_temporal=cfg.server_restarts > 0))
    exits = contextlib.AsyncExitStack()
    try:
        await stack.start()
        settings = settings_from_env(stack.env)
        pool = await create_pool(stack.database_url, min_size=0, max_size=4)
        client = await connect(settings)
        hooks: WebhookPhase | None = None
        if cfg.webhooks is not None:
            hooks = await exits.enter_async_context(webhook_phase(cfg.webhooks, settings, pool))
        invoices = await seed_invoices(pool, cfg.attempts + cfg.brute_force_invoices + 1)
        signer = signer_from_settings(settings)
        for inv in invoices:
            inv.token = signer.issue(inv.invoice_id)
        used = campaign_secrets(invoices)
        customers_inv = invoices[: cfg.attempts]
        attack_inv = invoices[cfg.attempts : cfg.attempts + cfg.brute_force_invoices]
        fuzz_inv = invoices[-1]
        plans = make_plans(cfg.attempts, rng)
        records = [CustomerRecord(inv, plan) for inv, plan in zip(customers_inv, plans, strict=True)]
        limits = httpx.Limits(
            max_connections=cfg.concurrency + 20, max_keepalive_connections=cfg.concurrency + 20
        )
        fault_log: list[str] = []
        fault_times: list[tuple[float, str]] = []
        async with httpx.AsyncClient(base_url=stack.portal_url, timeout=90.0, limits=limits) as http:
            in_flight: set[str] = set()
            across_restart: set[str] = set()
            gate = asyncio.Semaphore(cfg.concurrency)

            # Customers arrive over the fault window, so crashes and outages meet attempts in flight.
            ramp = (cfg.worker_kills + cfg.pg_restarts + cfg.server_restarts) * sum(cfg.fault_gap) / 2

            async def customer(rec: CustomerRecord) -> None:
                await asyncio.sleep(rng.uniform(0, ramp))
                async with gate:
                    in_flight.add(rec.invoice.invoice_id)
                    try:
                        await Customer(http, rec, faults.log, random.Random(rng.random())).run()
                    finally:
                        in_flight.discard(rec.invoice.invoice_id)

            console.print(
                f"{cfg.attempts} customers, {cfg.worker_kills} worker kills, {cfg.pg_restarts} PostgreSQL"
                f" restarts, {cfg.server_restarts} Temporal server restarts…"
            )
            await asyncio.gather(
                asyncio.gather(*(customer(r) for r in records)),
                inject_faults(stack, cfg, in_flight, across_restart, rng, fault_log, fault_times),
                hooks.write_probes(pool, random.Random(rng.random()), ramp) if hooks else asyncio.sleep(0),
            )
            assert stack.worker is not None
            if not stack.worker.alive():
                stack.worker.start()
            ids = [r.invoice.invoice_id for r in records]
            console.print("waiting for every attempt to settle…")
            seen = await wait_settled(client, ids, within=180.0)
            promises = [await check_settled(seen, http, records), check_outcomes(records, seen)]
            if cfg.server_restarts:
                promises.append(resumed_across_restart(records, seen, across_restart))
            promises += await check_payments(pool, ids)
            promises += await check_audit(client, pool, ids, audit_key=settings.audit_key())
            promises += check_codes(
                records,
                faults.log,
                cfg.broken_channel,
                fault_times,
                await load_sends(pool, ids),
                settings.secret("otp_hmac_key").encode(),
            )
            promises.append(retries_seen(records))
            if cfg.lifecycle.debits:
                promises += await run_lifecycle_phase(
                    cfg.lifecycle,
                    http=http,
                    pool=pool,
                    client=client,
                    settings=settings,
                    inbox=faults.log,
                    rng=rng,
                    console=console,
                    earlier_invoices=ids,
                )
            if hooks is not None:
                console.print("waiting for every webhook to be delivered…")
                promises += await hooks.settle_and_check(pool)
            console.print("brute force and schemathesis…")
            working = "sms" if cfg.broken_channel == "email" else "email"
            promises.append(
                await brute_force(http, pool, attack_inv, max_failed=settings.otp_max_failed, channel=working)
            )
            if cfg.schemathesis_calls:
                promises.append(
                    await fuzz_api(
                        stack.portal_url,
                        pay_token=fuzz_inv.token,
                        staff_token=settings.secret("staff_api_token"),
                        calls=cfg.schemathesis_calls,
                        work_dir=cfg.work_dir,
                    )
                )
            if cfg.attacks is not None:
                promises += await run_attacks(
                    http, pool, client, settings, faults, stack.config.task_queue, used, console, cfg.attacks
                )
        await exits.aclose()
        await pool.close()
        add_delivered_codes(used, faults.log)
    finally:
        await exits.aclose()
        stack.stop()
        faults.stop()
    # Once every process has stopped and flushed: the logs the whole run wrote.
    promises.append(check_logs(cfg.work_dir, used))
    return CampaignReport(cfg, promises, fault_log, time.monotonic() - started)
