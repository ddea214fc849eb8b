"""The outbox relay's fast path: a loop in every worker process (SPEC §12).

Every second it asks PostgreSQL for undispatched events (an index scan of a partial index that is
empty almost always) and starts their deliveries. Polling rather than LISTEN/NOTIFY: a notification
sent while no listener is connected (a worker restarting, PostgreSQL restarting) is gone, and a
dedicated listening connection must be watched and re-opened, while a poll recovers by itself on
its next tick; a second of latency is well inside what webhooks promise. The `webhook-relay-sweep`
Schedule covers a worker fleet whose loops all stopped.
"""

import asyncio
import contextlib
import logging

import asyncpg
from temporalio.client import Client

from activities.webhook_relay import dispatch_pending

log = logging.getLogger(__name__)


async def run_webhook_relay(
    pool: asyncpg.Pool,
    client: Client,
    task_queue: str,
    *,
    every: float = 1.0,
    stop: asyncio.Event | None = None,
) -> None:
    """Runs until cancelled (or `stop`); a failed pass (database or Temporal away) is retried."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            while await dispatch_pending(pool, client, task_queue):
                pass  # a full batch: there may be more right away
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("webhook relay pass failed (%s); retrying", type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)
