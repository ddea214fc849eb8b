"""The campaign's webhook receiver (SPEC §12): a loopback endpoint failing 30 % of tries while the
worker, PostgreSQL and Temporal are knocked over, and the events written meanwhile.

The receiver is subscribed to every type before customers arrive, so whatever the product writes
during the run (payment and invoice events) counts, beside probe events the campaign writes
itself through the outbox at random moments of the fault window.
"""

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
import uvicorn

from domain.events import EventType
from infra.settings import Settings
from infra.stores import webhooks as store
from infra.stores.events import record_event
from infra.webhook_settings import secret_box
from tools.chaos.checks import Promise
from tools.chaos.webhook_checks import WebhookFacts, check_webhooks
from tools.standins.webhook_receiver import WebhookReceiver

# Short waits between tries so the campaign sees them all (outside dev prod's floor applies).
CAMPAIGN_RETRY_SCHEDULE = "1s,2s,2s,3s,3s,5s,5s,5s"


@dataclass
class WebhookPhaseConfig:
    failure_rate: float = 0.3
    probes: int = 40
    settle_seconds: float = 180.0

    def env(self) -> dict[str, str]:
        return {"WEBHOOK_RETRY_SCHEDULE": CAMPAIGN_RETRY_SCHEDULE}


@dataclass
class WebhookPhase:
    config: WebhookPhaseConfig
    receiver: WebhookReceiver
    endpoint_id: str = ""
    since: datetime | None = None
    probes: list[str] = field(default_factory=list)

    async def write_probes(self, pool: asyncpg.Pool, rng: random.Random, window: float) -> None:
        """Probe events at random moments of the fault window; a write that meets an outage retries."""
        for n in range(self.config.probes):
            await asyncio.sleep(rng.uniform(0, 2 * window / max(self.config.probes, 1)))
            for _ in range(60):
                try:
                    async with pool.acquire() as conn, conn.transaction():
                        self.probes.append(
                            await record_event(
                                conn, EventType.INVOICE_UPDATED, {"object": "campaign_probe", "n": n}
                            )
                        )
                    break
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    await asyncio.sleep(1.0)

    async def facts(self, pool: asyncpg.Pool) -> WebhookFacts:
        written = [
            r["id"]
            for r in await pool.fetch("SELECT id FROM events WHERE created_at >= $1 ORDER BY seq", self.since)
        ]
        recorded = Counter[str](
            {
                r["event_id"]: r["n"]
                for r in await pool.fetch(
                    "SELECT event_id, count(*) AS n FROM webhook_deliveries WHERE endpoint_id = $1 GROUP BY event_id",
                    self.endpoint_id,
                )
            }
        )
        return WebhookFacts(
            written=written,
            accepted=self.receiver.delivered_ids(),
            received=Counter(t.webhook_id for t in self.receiver.tries),
            recorded=recorded,
            unverified=sum(1 for t in self.receiver.tries if not t.verified_with),
        )

    async def settle_and_check(self, pool: asyncpg.Pool) -> list[Promise]:
        deadline = time.monotonic() + self.config.settle_seconds
        facts = await self.facts(pool)
        while time.monotonic() < deadline and any(facts.accepted[e] == 0 for e in facts.written):
            await asyncio.sleep(1.0)
            facts = await self.facts(pool)
        return check_webhooks(facts)


@contextlib.asynccontextmanager
async def webhook_phase(
    config: WebhookPhaseConfig, settings: Settings, pool: asyncpg.Pool
) -> AsyncIterator[WebhookPhase]:
    """Serves the receiver on loopback and subscribes it to every event type until the block ends."""
    receiver = WebhookReceiver(failure_rate=config.failure_rate)
    server = uvicorn.Server(
        uvicorn.Config(receiver.app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    phase = WebhookPhase(config, receiver)
    try:
        async with pool.acquire() as conn:
            endpoint, secret = await store.create_endpoint(
                conn,
                secret_box(settings),
                url=f"http://127.0.0.1:{port}/hook",
                events=["*"],
                created_by="campaign",
            )
            phase.since = endpoint.created_at
        phase.endpoint_id = endpoint.id
        receiver.secrets = [secret]
        yield phase
    finally:
        server.should_exit = True
        await task
