"""Codes that reached a phone or inbox beyond SPEC §11's caps, counted from what the providers delivered.

The stand-ins' logs are the witness: each delivered message is tied (by its code's keyed digest) to
the send PostgreSQL recorded, so a retried message of one send is one send, and a code no recorded
send stands behind counts as beyond every cap (nothing would have limited it).
"""

from dataclasses import dataclass, field

import asyncpg

from infra.settings import Settings
from tools.chaos.checks import load_sends, tie_messages_to_sends
from tools.standins.faulty_providers import AcceptedMessages

DAY_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class SendCaps:
    per_invoice: int
    per_invoice_window_seconds: float
    per_destination_day: int
    cooldown_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> "SendCaps":
        return cls(
            per_invoice=settings.otp_max_sends,
            per_invoice_window_seconds=float(max(settings.otp_lockout_seconds, 1)),
            per_destination_day=settings.otp_max_sends_per_destination_day,
            cooldown_seconds=float(settings.otp_resend_cooldown_seconds),
        )


def sends_beyond(times: list[float], cap: int, window: float) -> int:
    """Sends that found `cap` others already inside the window before them."""
    ordered = sorted(times)
    beyond = 0
    start = 0
    for i, at in enumerate(ordered):
        while ordered[start] <= at - window:
            start += 1
        if i - start >= cap:
            beyond += 1
    return beyond


@dataclass
class SendCount:
    per_invoice: dict[str, list[float]] = field(default_factory=dict)
    per_destination: dict[str, list[float]] = field(default_factory=dict)
    unrecorded: int = 0
    beyond: int = 0
    details: list[str] = field(default_factory=list)

    @property
    def delivered(self) -> int:
        return sum(len(v) for v in self.per_destination.values())

    def summary(self) -> str:
        most_invoice = max((len(v) for v in self.per_invoice.values()), default=0)
        by_dest = ", ".join(
            f"{'email' if '@' in d else 'sms'} {len(v)}" for d, v in self.per_destination.items()
        )
        return (
            f"{self.delivered} codes delivered on {len(self.per_invoice)} invoices"
            f" (at most {most_invoice} on one), per shared destination: {by_dest or 'none'};"
            f" {self.unrecorded} with no recorded send"
        )


def judge(count: SendCount, caps: SendCaps) -> SendCount:
    for invoice_id, times in count.per_invoice.items():
        over = sends_beyond(times, caps.per_invoice, caps.per_invoice_window_seconds)
        if over:
            count.details.append(f"{invoice_id}: {over} beyond {caps.per_invoice} per window")
        count.beyond += over
    for times in count.per_destination.values():
        over = sends_beyond(times, caps.per_destination_day, DAY_SECONDS)
        if over:
            count.details.append(f"a shared destination: {over} beyond {caps.per_destination_day} a day")
        count.beyond += over
    count.beyond += count.unrecorded
    if count.unrecorded:
        count.details.append(f"{count.unrecorded} codes delivered that no recorded send made")
    return count


async def count_sends_beyond_caps(
    pool: asyncpg.Pool,
    inbox: AcceptedMessages,
    invoice_ids: list[str],
    destinations: set[str],
    caps: SendCaps,
    hmac_key: bytes,
) -> SendCount:
    """Distinct sends delivered to `destinations`, per invoice and per destination, against the caps."""
    sends = await load_sends(pool, invoice_ids)
    rows = await pool.fetch(
        "SELECT DISTINCT run_id, invoice_id FROM otp_challenges WHERE invoice_id = ANY($1)", invoice_ids
    )
    invoice_of_run = {r["run_id"]: r["invoice_id"] for r in rows}
    messages = [m for m in inbox.messages() if m.recipient in destinations and m.code]
    ledger = tie_messages_to_sends(messages, sends, hmac_key)
    count = SendCount(per_destination={d: [] for d in destinations})
    for (run_id, _seq), delivered in ledger.by_send.items():
        first = min(delivered, key=lambda m: m.at)
        count.per_invoice.setdefault(invoice_of_run.get(run_id, "?"), []).append(first.at)
        count.per_destination[first.recipient].append(first.at)
    for orphan in ledger.orphans:
        count.per_destination[orphan.recipient].append(orphan.at)
        count.unrecorded += 1
    return judge(count, caps)
