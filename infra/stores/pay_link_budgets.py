"""Per-link and per-invoice budgets for what a pay-link holder may do (issue 21, finding 3).

A link is known by the SHA-256 of its nonce. Slots are reserved with one conditional UPDATE
before the portal messages the attempt, so concurrent requests (and every portal process) share
one count; a slot the action did not use is given back.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, TypeAlias

import asyncpg

Db: TypeAlias = asyncpg.Pool | asyncpg.Connection
LifetimeCounter = Literal["sends", "wrong_codes"]


def link_id(nonce: str) -> bytes:
    return hashlib.sha256(f"pay-link:{nonce}".encode()).digest()


async def ensure_link(db: Db, link: bytes, invoice_id: str) -> None:
    await db.execute(
        "INSERT INTO pay_link_budgets (link_id, invoice_id) VALUES ($1, $2) ON CONFLICT (link_id) DO NOTHING",
        link,
        invoice_id,
    )


async def refusals_window(db: Db, link: bytes, window: timedelta) -> tuple[int, datetime | None]:
    """Refused requests of this link in its current window, and when that window ends."""
    row = await db.fetchrow(
        "SELECT refusals, refusals_window_started_at + $2::interval AS ends FROM pay_link_budgets"
        " WHERE link_id = $1 AND refusals_window_started_at > now() - $2::interval",
        link,
        window,
    )
    return (0, None) if row is None else (int(row["refusals"]), row["ends"])


async def count_refusal(db: Db, link: bytes, window: timedelta) -> None:
    await db.execute(
        "UPDATE pay_link_budgets SET"
        " refusals = CASE WHEN refusals_window_started_at <= now() - $2::interval THEN 1 ELSE refusals + 1 END,"
        " refusals_window_started_at = CASE WHEN refusals_window_started_at <= now() - $2::interval"
        "   THEN now() ELSE refusals_window_started_at END"
        " WHERE link_id = $1",
        link,
        window,
    )


async def reserve(db: Db, link: bytes, counter: LifetimeCounter, cap: int) -> bool:
    """Take one slot of a lifetime counter; False when the link has used them all."""
    taken = await db.fetchval(
        f"UPDATE pay_link_budgets SET {counter} = {counter} + 1 WHERE link_id = $1 AND {counter} < $2"
        f" RETURNING {counter}",
        link,
        cap,
    )
    return taken is not None


async def give_back(db: Db, link: bytes, counter: LifetimeCounter | Literal["payment_tries"]) -> None:
    await db.execute(
        f"UPDATE pay_link_budgets SET {counter} = greatest({counter} - 1, 0) WHERE link_id = $1", link
    )


async def reserve_payment_try(db: Db, link: bytes, cap: int, window: timedelta) -> datetime | None:
    """Take one payment (account validation) slot in the window; None if taken, else when to retry."""
    row = await db.fetchrow(
        "UPDATE pay_link_budgets SET"
        " payment_tries = CASE WHEN payments_window_started_at <= now() - $3::interval THEN 1"
        "   ELSE payment_tries + 1 END,"
        " payments_window_started_at = CASE WHEN payments_window_started_at <= now() - $3::interval"
        "   THEN now() ELSE payments_window_started_at END"
        " WHERE link_id = $1 AND (payments_window_started_at <= now() - $3::interval OR payment_tries < $2)"
        " RETURNING payment_tries",
        link,
        cap,
        window,
    )
    if row is not None:
        return None
    ends: datetime | None = await db.fetchval(
        "SELECT payments_window_started_at + $2::interval FROM pay_link_budgets WHERE link_id = $1",
        link,
        window,
    )
    return ends


@dataclass(frozen=True)
class RefusalHold:
    refusal: str
    message: str
    hold_until: datetime
    now: datetime


async def active_hold(db: Db, invoice_id: str, actions: list[str]) -> RefusalHold | None:
    """The latest-ending live hold among `actions`; answering from it is counted."""
    row = await db.fetchrow(
        "UPDATE refusal_holds SET repeats = repeats + 1"
        " WHERE (invoice_id, action) = (SELECT invoice_id, action FROM refusal_holds"
        "   WHERE invoice_id = $1 AND action = ANY($2::text[]) AND hold_until > now()"
        "   ORDER BY hold_until DESC LIMIT 1)"
        " RETURNING refusal, message, hold_until, now() AS now",
        invoice_id,
        actions,
    )
    if row is None:
        return None
    return RefusalHold(row["refusal"], row["message"], row["hold_until"], row["now"])


async def hold(db: Db, invoice_id: str, action: str, refusal: str, message: str, seconds: int) -> None:
    await db.execute(
        "INSERT INTO refusal_holds (invoice_id, action, refusal, message, hold_until)"
        " VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))"
        " ON CONFLICT (invoice_id, action) DO UPDATE SET refusal = EXCLUDED.refusal,"
        " message = EXCLUDED.message, hold_until = greatest(refusal_holds.hold_until, EXCLUDED.hold_until),"
        " repeats = 0, created_at = now()",
        invoice_id,
        action,
        refusal,
        message,
        float(seconds),
    )
