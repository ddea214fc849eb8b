"""`portalpay ops show`: the payments of an invoice and each one's life (SPEC §9)."""

from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
from rich.console import Console

from domain.ach_returns import return_code
from infra.resources import open_pool
from infra.settings import Settings
from starters.cli.output import emit_table


@dataclass
class PaymentLife:
    payment_id: str
    status: str
    amount_cents: int
    currency: str
    account_last4: str
    return_code: str | None
    expected_settlement_at: datetime | None
    history: list[tuple[str, str | None, datetime]] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "payment_id": self.payment_id,
            "status": self.status,
            "amount_cents": self.amount_cents,
            "currency": self.currency,
            "account_last4": self.account_last4,
            "return_code": self.return_code,
            "expected_settlement_at": self.expected_settlement_at.isoformat()
            if self.expected_settlement_at
            else None,
            "history": [{"status": s, "return_code": c, "at": t.isoformat()} for s, c, t in self.history],
        }


async def load_payment_lives(pool: asyncpg.Pool, invoice_id: str) -> list[PaymentLife]:
    rows = await pool.fetch(
        "SELECT id, status, amount_cents, currency, account_last4, return_code, expected_settlement_at"
        " FROM payments WHERE invoice_id = $1 ORDER BY created_at",
        invoice_id,
    )
    lives = []
    for row in rows:
        history = await pool.fetch(
            "SELECT status, return_code, occurred_at FROM payment_status_history WHERE payment_id = $1"
            " ORDER BY occurred_at, recorded_at",
            row["id"],
        )
        lives.append(
            PaymentLife(
                payment_id=row["id"],
                status=row["status"],
                amount_cents=row["amount_cents"],
                currency=row["currency"],
                account_last4=row["account_last4"],
                return_code=row["return_code"],
                expected_settlement_at=row["expected_settlement_at"],
                history=[(h["status"], h["return_code"], h["occurred_at"]) for h in history],
            )
        )
    return lives


async def payment_lives(settings: Settings, invoice_id: str) -> list[PaymentLife]:
    async with open_pool(settings) as pool:
        return await load_payment_lives(pool, invoice_id)


def render_payment_lives(out: Console, lives: list[PaymentLife]) -> None:
    if not lives:
        return
    rows = []
    for life in lives:
        code = f"{life.return_code} {return_code(life.return_code).meaning}" if life.return_code else ""
        steps = " → ".join(f"{s}{' ' + c if c else ''} {t:%Y-%m-%d %H:%M}" for s, c, t in life.history)
        if life.status == "processing" and life.expected_settlement_at is not None:
            steps += f" (expected to settle by {life.expected_settlement_at:%a %d %b %H:%M} UTC)"
        amount = f"{life.amount_cents / 100:,.2f} {life.currency}"
        rows.append([life.payment_id, life.status, amount, f"…{life.account_last4}", code, steps])
    emit_table(out, "Payments", ["payment", "status", "amount", "account", "return", "life"], rows)
