"""The sandbox payment processor: its own ledger in PostgreSQL, idempotency keys honoured like a real one.

A debit presented twice with the same key returns the first answer; with a different key it is a
new debit. The account number decides the outcome (see `domain.sandbox`).
"""

import hashlib
from dataclasses import dataclass

import asyncpg

from domain.masking import last4
from domain.routing import is_valid_aba_routing
from domain.sandbox import sandbox_decline_reason


@dataclass(frozen=True)
class DebitAnswer:
    reference: str
    accepted: bool
    decline_reason: str | None


class ProcessorRejected(Exception):
    """The request itself is malformed (a real processor's 4xx)."""


class SandboxProcessor:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def debit(
        self,
        *,
        idempotency_key: str,
        amount_cents: int,
        currency: str,
        routing_number: str,
        account_number: str,
    ) -> DebitAnswer:
        if not is_valid_aba_routing(routing_number):
            raise ProcessorRejected("routing number fails the ABA checksum")
        reason = sandbox_decline_reason(account_number)
        reference = "SBX-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:20].upper()
        row = await self._pool.fetchrow(
            "INSERT INTO sandbox_ledger (idempotency_key, reference, amount_cents, currency, routing_number,"
            " account_last4, outcome, decline_reason) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)"
            " ON CONFLICT (idempotency_key) DO UPDATE SET idempotency_key = EXCLUDED.idempotency_key"
            " RETURNING reference, outcome, decline_reason, amount_cents",
            idempotency_key,
            reference,
            amount_cents,
            currency,
            routing_number,
            last4(account_number),
            "declined" if reason else "accepted",
            reason,
        )
        if row["amount_cents"] != amount_cents:
            raise ProcessorRejected("idempotency key reused with a different amount")
        return DebitAnswer(row["reference"], row["outcome"] == "accepted", row["decline_reason"])
