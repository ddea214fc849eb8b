"""`NachaProcessor`: the processor interface (port.py) over the company's own bank (SPEC §13).

A debit is not sent anywhere when submitted: it becomes an entry waiting for the next file, its
account number sealed under NACHA_ACCOUNT_KEY until that file is uploaded. An account not seen
before gets a prenote first; its debits wait until the prenote has cleared (origination decides).
The debit's id (the payment's processor reference) is the entry id; its status is read from the
entry: waiting and sent are `processing`, a sent entry whose quiet banking days have passed is
`settled`, and a return makes it `failed` (before settlement) or `returned`.
"""

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from domain.ach_payment import ProcessorEvent
from domain.masking import last4
from domain.nacha.ascii_text import cut_name
from domain.nacha.file_ids import trace_number
from domain.nacha.model import DebitEntry
from domain.nacha.writer import entry_problem
from domain.routing import is_valid_aba_routing
from infra.bank_accounts import bank_fingerprint
from infra.nacha import calendar
from infra.nacha.entries import publish_events, settle_due_entries
from infra.nacha.sealing import Sealer
from infra.nacha_config import NachaConfig
from infra.providers.processor.client import AccountValidation, Debit, EventPage, ProcessorRejected

# Entry status → the debit status of the processor interface.
_DEBIT_STATUS = {
    "waiting": "processing",
    "sent": "processing",
    "settled": "settled",
    "failed": "failed",
    "returned": "returned",
    "canceled": "canceled",
}
_TRANSACTION_CODES = {("debit", "checking"): "27", ("debit", "savings"): "37"}
_PRENOTE_CODES = {"checking": "28", "savings": "38"}


class NachaProcessor:
    name = "nacha"

    def __init__(
        self, pool: asyncpg.Pool, config: NachaConfig, sealer: Sealer, fingerprint_key: bytes
    ) -> None:
        self._pool = pool
        self._config = config
        self._sealer = sealer
        self._key = fingerprint_key
        self.cursor_key = f"nacha:{config.immediate_destination}:{config.company_id.strip()}"

    def _digest(self, request: dict[str, Any]) -> str:
        body = json.dumps(request, sort_keys=True).encode()
        return hmac.new(self._key, b"nacha-request/" + body, hashlib.sha256).hexdigest()

    async def validate_account(self, *, routing_number: str, account_number: str) -> AccountValidation:
        # The bank validates an account by its prenote (SPEC §13): the first debit waits for it.
        if not is_valid_aba_routing(routing_number):
            raise ProcessorRejected("routing number fails the ABA checksum", status=422)
        return AccountValidation(id="nacha:prenote-follows", valid=True, reason=None)

    async def debit(
        self,
        *,
        idempotency_key: str,
        amount_cents: int,
        currency: str,
        routing_number: str,
        account_number: str,
        account_type: str,
        metadata: dict[str, str],
    ) -> Debit:
        if currency != "USD":
            raise ProcessorRejected("NACHA debits are in USD only", status=422)
        if not is_valid_aba_routing(routing_number):
            raise ProcessorRejected("routing number fails the ABA checksum", status=422)
        if account_type not in ("checking", "savings") or not (4 <= len(account_number) <= 17):
            raise ProcessorRejected("account type or number not accepted", status=422)
        digest = self._digest(
            {
                "amount_cents": amount_cents,
                "currency": currency,
                "routing_number": routing_number,
                "account_number": account_number,
                "account_type": account_type,
            }
        )
        payment_id = metadata.get("payment_id")
        fingerprint = bank_fingerprint(self._key, routing_number, account_number)
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('nacha-debit:' || $1))", idempotency_key
            )
            found = await conn.fetchrow(
                "SELECT * FROM ach_entries WHERE idempotency_key = $1", idempotency_key
            )
            if found is not None:
                if found["request_digest"] != digest:
                    raise ProcessorRejected(
                        "idempotency key already used for another request",
                        status=409,
                        code="idempotency_conflict",
                    )
                return await self._view(conn, found)
            holder = None
            if payment_id:
                holder = await conn.fetchval("SELECT account_holder FROM payments WHERE id = $1", payment_id)
            # The payer's name as the format takes it (≤ 22 ASCII characters, SPEC §13).
            name = cut_name(holder or "", 22) or "CUSTOMER"
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('nacha-prenote:' || $1))", fingerprint)
            prenote_due = await conn.fetchval(
                "SELECT 1 FROM ach_prenotes WHERE bank_fingerprint = $1", fingerprint
            )
            if prenote_due is None:
                prenote_id = await self._insert_entry(
                    conn,
                    kind="prenote",
                    code=_PRENOTE_CODES[account_type],
                    routing=routing_number,
                    account=account_number,
                    fingerprint=fingerprint,
                    amount=0,
                    name=name,
                    key=None,
                    digest=None,
                    payment_id=payment_id,
                    invoice_id=metadata.get("invoice_id"),
                )
                await conn.execute(
                    "INSERT INTO ach_prenotes (bank_fingerprint, entry_id) VALUES ($1, $2)",
                    fingerprint,
                    prenote_id,
                )
            # Checked now, with the format's own rules: one bad entry would refuse its whole file.
            problem = entry_problem(
                DebitEntry(
                    transaction_code=_TRANSACTION_CODES[("debit", account_type)],
                    rdfi_routing=routing_number,
                    account_number=account_number,
                    amount_cents=amount_cents,
                    individual_id=(payment_id or "X").removeprefix("PAY-")[:15],
                    individual_name=name,
                    trace_number=trace_number(self._config.odfi_id, 1),
                ),
                self._config.odfi_id,
            )
            if problem is not None:
                raise ProcessorRejected(f"the debit cannot go in a NACHA file: {problem}", status=422)
            entry_id = await self._insert_entry(
                conn,
                kind="debit",
                code=_TRANSACTION_CODES[("debit", account_type)],
                routing=routing_number,
                account=account_number,
                fingerprint=fingerprint,
                amount=amount_cents,
                name=name,
                key=idempotency_key,
                digest=digest,
                payment_id=payment_id,
                invoice_id=metadata.get("invoice_id"),
            )
            row = await conn.fetchrow("SELECT * FROM ach_entries WHERE id = $1", entry_id)
            return await self._view(conn, row, prenote_first=prenote_due is None)

    async def _insert_entry(
        self,
        conn: asyncpg.Connection,
        *,
        kind: str,
        code: str,
        routing: str,
        account: str,
        fingerprint: str,
        amount: int,
        name: str,
        key: str | None,
        digest: str | None,
        payment_id: str | None,
        invoice_id: str | None,
    ) -> str:
        entry_id = "ach_" + uuid.uuid4().hex[:20]
        seq = int(await conn.fetchval("SELECT nextval('ach_trace_seq')"))
        trace = trace_number(self._config.odfi_id, seq)
        if kind == "debit" and payment_id:
            # Identifies the payment in the bank's reports; ≤ 15 characters and unique (a constraint).
            individual = payment_id.removeprefix("PAY-")[:15]
        else:
            individual = f"PN{seq:07d}"
        await conn.execute(
            "INSERT INTO ach_entries (id, kind, idempotency_key, request_digest, payment_id, invoice_id,"
            " transaction_code, routing_number, account_number_sealed, account_last4, bank_fingerprint,"
            " amount_cents, individual_id, individual_name, trace_number, status)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,'waiting')",
            entry_id,
            kind,
            key,
            digest,
            payment_id,
            invoice_id,
            code,
            routing,
            self._sealer.seal(account.encode(), bound_to=entry_id),
            last4(account),
            fingerprint,
            amount,
            individual,
            name,
            trace,
        )
        return entry_id

    async def _view(
        self, conn: asyncpg.Connection | asyncpg.Pool, row: Any, *, prenote_first: bool = False
    ) -> Debit:
        return Debit(
            id=row["id"],
            status=_DEBIT_STATUS[row["status"]],
            amount_cents=row["amount_cents"],
            currency="USD",
            decline_reason=None,
            return_code=row["return_code"],
            expected_settlement_at=self._expected_settlement(row, prenote_first),
            metadata={k: v for k, v in (("payment_id", row["payment_id"]),) if v},
        )

    def _expected_settlement(self, row: Any, prenote_first: bool) -> datetime:
        """When to ask if nothing was heard: the settlement day of the entry's file (or of the next)."""
        config = self._config
        if row["effective_date"] is not None:
            effective = row["effective_date"]
        else:
            file_day = calendar.next_file_day(datetime.now(UTC), config.cutoff, config.cutoff_zone)
            if prenote_first:
                prenote_effective = calendar.effective_date(file_day)
                file_day = calendar.add_banking_days(prenote_effective, config.prenote_wait_days)
            effective = calendar.effective_date(file_day)
        day = calendar.add_banking_days(effective, config.settle_after_banking_days)
        return calendar.at_cutoff(day, config.cutoff, config.cutoff_zone) + timedelta(minutes=1)

    async def get_debit(self, debit_id: str) -> Debit:
        await settle_due_entries(self._pool, self._config, only=debit_id)
        row = await self._pool.fetchrow(
            "SELECT * FROM ach_entries WHERE id = $1 AND kind = 'debit'", debit_id
        )
        if row is None:
            raise ProcessorRejected("no such debit", status=404, code="not_found")
        return await self._view(self._pool, row)

    async def find_debit(self, idempotency_key: str) -> Debit | None:
        row = await self._pool.fetchrow(
            "SELECT * FROM ach_entries WHERE idempotency_key = $1", idempotency_key
        )
        return None if row is None else await self._view(self._pool, row)

    async def cancel(self, debit_id: str) -> Debit:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE ach_entries SET status = 'canceled', account_number_sealed = NULL"
                " WHERE id = $1 AND kind = 'debit' AND status = 'waiting' AND file_id IS NULL RETURNING *",
                debit_id,
            )
            if row is None:
                current = await conn.fetchrow("SELECT * FROM ach_entries WHERE id = $1", debit_id)
                if current is None:
                    raise ProcessorRejected("no such debit", status=404, code="not_found")
                if current["status"] != "canceled":
                    raise ProcessorRejected(
                        f"the debit is {_DEBIT_STATUS[current['status']]} (in a file)",
                        status=409,
                        code="not_cancelable",
                    )
                return await self._view(conn, current)
            await publish_events(conn, [(row, "canceled", None)])
            return await self._view(conn, row)

    async def events_after(self, cursor: str, *, limit: int = 100) -> EventPage:
        start = int(cursor or "0") if (cursor or "0").isdigit() else 0
        rows = await self._pool.fetch(
            "SELECT seq, payload FROM ach_events WHERE seq > $1 ORDER BY seq LIMIT $2", start, limit + 1
        )
        more = len(rows) > limit
        rows = rows[:limit]
        events = [
            ProcessorEvent.model_validate(
                json.loads(r["payload"]) if isinstance(r["payload"], str) else r["payload"]
            )
            for r in rows
        ]
        return EventPage(
            events=events, next_cursor=str(rows[-1]["seq"]) if rows else str(start), has_more=more
        )

    async def aclose(self) -> None:
        return None
