"""Reading what the bank sends back (SPEC §13): returns and notices of change.

Each file is ingested once, by its sha256. A return (addenda 99) is matched by its original trace
number: a returned debit becomes its payment's `failed` event (before settlement) or `returned`
(after), through §9's own path; a returned prenote fails the debits waiting for it before any
money moves. A notice of change (addenda 98) is stored in `ach_notices` (corrected data holding an
account number masked, and sealed), audited `NOTICE_OF_CHANGE`, reported as the event
`ach.notice_of_change`, and marks the bank account as needing new details: its next debit is
refused until the customer enters them again. A trace number nobody knows is kept for staff. A
line that cannot be read is reported by number; nothing here raises on a bad file.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from temporalio.client import Client

from domain.ach_files import IngestProblem, IngestReport
from domain.activity_io import AuditEventInput
from domain.attempt import ClientContext
from domain.audit import AuditEventType
from domain.events import EventType
from domain.masking import last4
from infra.nacha.entries import deliver, publish_events, settle_due_entries
from infra.nacha.file_format import InboundNotice, read_inbound
from infra.nacha.sealing import Sealer
from infra.nacha_config import NachaConfig
from infra.stores.audit_trail import append_event
from infra.stores.events import record_event

# Notice codes whose corrected data carries an account number (kept masked, and sealed).
_ACCOUNT_BEARING = {"C01", "C03", "C06", "C07"}


def corrected_account(code: str, data: str) -> str | None:
    """The corrected account number in a notice's corrected data, where the code carries one."""
    raw = data.rstrip()
    if code == "C01":
        return raw.strip() or None
    if code == "C03":  # routing (9), spaces, account
        return raw[9:].strip() or None
    if code == "C06":  # account (17), transaction code (2)
        return raw[:17].strip() or None
    if code == "C07":  # routing (9), account (17), transaction code (2)
        return raw[9:26].strip() or None
    return None


def masked_correction(code: str, data: str) -> str:
    account = corrected_account(code, data)
    if account is None:
        return data.strip()
    return data.strip().replace(account, "•" * max(len(account) - 4, 0) + last4(account))


@dataclass
class Inbound:
    pool: asyncpg.Pool
    config: NachaConfig
    sealer: Sealer
    audit_key: bytes
    client: Client | None
    task_queue: str

    async def ingest(self, name: str, body: bytes, *, source: str) -> IngestReport:
        sha = hashlib.sha256(body).hexdigest()
        report = IngestReport(name=name, sha256=sha)
        # Settle first: a return read today for a debit whose quiet days passed is a `returned`.
        settled = await settle_due_entries(self.pool, self.config)
        parsed = read_inbound(body.decode("ascii", errors="replace"))
        report.problems = [IngestProblem(line=p.line, message=p.message) for p in parsed.problems]
        events = list(settled)
        async with self.pool.acquire() as conn, conn.transaction():
            file_id = await conn.fetchval(
                "INSERT INTO ach_inbound_files (name, sha256, source) VALUES ($1, $2, $3)"
                " ON CONFLICT (sha256) DO NOTHING RETURNING id",
                name,
                sha,
                source,
            )
            if file_id is None:
                report.already_ingested = True
                report.problems = []
            else:
                for ret in parsed.returns:
                    found = await self._apply_return(conn, file_id, ret.trace_number, ret.return_code)
                    if found is None:
                        report.unknown_traces.append(ret.trace_number)
                    else:
                        report.returns += 1
                        events += found
                for notice in parsed.notices:
                    moved = await self._apply_notice(conn, file_id, notice)
                    if moved is None:
                        report.unknown_traces.append(notice.trace_number)
                    else:
                        report.notices += 1
                        events += moved
                await conn.execute(
                    "UPDATE ach_inbound_files SET returns = $2, notices = $3, unknown = $4, problems = $5::jsonb"
                    " WHERE id = $1",
                    file_id,
                    report.returns,
                    report.notices,
                    len(report.unknown_traces),
                    json.dumps([p.model_dump() for p in report.problems]),
                )
        report.events_delivered = await deliver(self.pool, self.client, self.task_queue, events)
        return report

    async def _unknown(
        self, conn: asyncpg.Connection, file_id: int, trace: str, kind: str, code: str
    ) -> None:
        await conn.execute(
            "INSERT INTO ach_unknown_traces (inbound_file_id, trace_number, kind, code) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT DO NOTHING",
            file_id,
            trace,
            kind,
            code,
        )

    async def _apply_return(
        self, conn: asyncpg.Connection, file_id: int, trace: str, code: str
    ) -> list[Any] | None:
        entry = await conn.fetchrow("SELECT * FROM ach_entries WHERE trace_number = $1 FOR UPDATE", trace)
        if entry is None or entry["status"] == "waiting":  # never uploaded: the bank cannot know it
            await self._unknown(conn, file_id, trace, "return", code)
            return None
        if entry["status"] in ("failed", "returned", "canceled"):
            return []  # the same return again (another file): nothing moves twice
        if entry["kind"] == "prenote":
            await conn.execute(
                "UPDATE ach_entries SET status = 'returned', return_code = $2, returned_at = now() WHERE id = $1",
                entry["id"],
                code,
            )
            # Its account's debits never leave: each fails with the prenote's code (SPEC §13).
            held = await conn.fetch(
                "UPDATE ach_entries SET status = 'failed', return_code = $2, returned_at = now(),"
                " account_number_sealed = NULL WHERE kind = 'debit' AND bank_fingerprint = $1"
                " AND status = 'waiting' AND file_id IS NULL RETURNING *",
                entry["bank_fingerprint"],
                code,
            )
            return await publish_events(conn, [(d, "failed", code) for d in held])
        status = "returned" if entry["status"] == "settled" else "failed"
        moved = await conn.fetchrow(
            "UPDATE ach_entries SET status = $2, return_code = $3, returned_at = now() WHERE id = $1 RETURNING *",
            entry["id"],
            status,
            code,
        )
        return await publish_events(conn, [(moved, status, code)])

    async def _apply_notice(
        self, conn: asyncpg.Connection, file_id: int, notice: InboundNotice
    ) -> list[Any] | None:
        entry = await conn.fetchrow("SELECT * FROM ach_entries WHERE trace_number = $1", notice.trace_number)
        if entry is None:
            await self._unknown(conn, file_id, notice.trace_number, "notice", notice.change_code)
            return None
        account = corrected_account(notice.change_code, notice.corrected_data)
        sealed = None
        if notice.change_code in _ACCOUNT_BEARING or account:
            sealed = self.sealer.seal(
                notice.corrected_data.encode(), bound_to=f"notice:{notice.trace_number}"
            )
        masked = masked_correction(notice.change_code, notice.corrected_data)
        notice_id = await conn.fetchval(
            "INSERT INTO ach_notices (inbound_file_id, trace_number, change_code, corrected_data_masked,"
            " corrected_data_sealed, entry_id, payment_id, bank_fingerprint, account_last4)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT DO NOTHING RETURNING id",
            file_id,
            notice.trace_number,
            notice.change_code,
            masked,
            sealed,
            entry["id"],
            entry["payment_id"],
            entry["bank_fingerprint"],
            entry["account_last4"],
        )
        if notice_id is None:
            return []
        pay = None
        if entry["payment_id"]:
            pay = await conn.fetchrow(
                "SELECT p.id, p.invoice_id, p.customer_id, p.payer_contact_id, i.external_id AS invoice_external_id,"
                " c.external_id AS customer_external_id FROM payments p JOIN invoices i ON i.id = p.invoice_id"
                " JOIN customers c ON c.id = p.customer_id WHERE p.id = $1",
                entry["payment_id"],
            )
        details = {
            "notice_id": notice_id,
            "change_code": notice.change_code,
            "corrected_data": masked,
            "trace_number": notice.trace_number,
            "entry_kind": entry["kind"],
            "payment_id": entry["payment_id"],
            "account_last4": entry["account_last4"],
        }
        await append_event(
            conn,
            AuditEventInput(
                event_key=f"nacha-notice/{notice_id}",
                event_type=AuditEventType.NOTICE_OF_CHANGE,
                invoice_id=pay["invoice_id"] if pay else entry["invoice_id"],
                customer_id=pay["customer_id"] if pay else None,
                payer_contact_id=pay["payer_contact_id"] if pay else None,
                client=ClientContext(actor="bank"),
                details=details,
                occurred_at=datetime.now(UTC),
            ),
            key=self.audit_key,
        )
        await record_event(
            conn,
            EventType.ACH_NOTICE_OF_CHANGE,
            {
                "object": "ach_notice_of_change",
                **details,
                "invoice": {"id": pay["invoice_id"], "external_id": pay["invoice_external_id"]}
                if pay
                else None,
                "customer": {"id": pay["customer_id"], "external_id": pay["customer_external_id"]}
                if pay
                else None,
            },
        )
        if entry["kind"] != "prenote":
            return []
        # A prenote corrected by the bank: the debits waiting for it would go to the old details.
        # They are withdrawn before sending (§9 `canceled`, the invoice open again); the customer
        # pays again with the details as they are now.
        held = await conn.fetch(
            "UPDATE ach_entries SET status = 'canceled', account_number_sealed = NULL WHERE kind = 'debit'"
            " AND bank_fingerprint = $1 AND status = 'waiting' AND file_id IS NULL RETURNING *",
            entry["bank_fingerprint"],
        )
        return await publish_events(conn, [(d, "canceled", None) for d in held])
