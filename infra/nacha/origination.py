"""One origination run (SPEC §13): one file of the due entries, read back and checked, stored
sealed in `ach_files`, uploaded by SFTP; only then are its entries `sent` and their account numbers
deleted.

An entry is in exactly one uploaded file whatever is re-run or restarted: entries join a file in
the transaction that stores it, at most one file is ever unsent (a unique index), and a run that
finds one uploads that file again instead of writing another. SFTP counts a file already there
under its name with the same bytes as uploaded (a crash after the rename). A failed upload leaves
the file `failed` and its entries waiting in it; staff are told once it has failed for 30 minutes.
"""

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from domain.ach_files import OriginationReport
from domain.activity_io import AuditEventInput
from domain.attempt import ClientContext
from domain.audit import AuditEventType
from domain.nacha.file_ids import next_file_id_modifier
from infra.nacha import calendar
from infra.nacha.file_format import OutgoingEntry, check_written, mask_account_numbers, write_ach_file
from infra.nacha.sealing import Sealer
from infra.nacha.transfer_errors import UploadFailed
from infra.nacha_config import NachaConfig
from infra.stores.audit_trail import append_event

STAFF_AFTER = timedelta(minutes=30)

Upload = Callable[[str, bytes], Awaitable[None]]
TellStaff = Callable[[str, str], Awaitable[None]]


class OriginationBusy(Exception):
    """Another run holds the origination lock: this one retries shortly."""


@dataclass
class Origination:
    pool: asyncpg.Pool
    config: NachaConfig
    sealer: Sealer
    audit_key: bytes
    upload: Upload
    tell_staff: TellStaff | None = None

    async def run(self, now: datetime | None = None) -> OriginationReport:
        now = now or datetime.now(UTC)
        async with self.pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext('nacha-origination'))"):
                raise OriginationBusy("another origination run is writing or uploading a file")
            try:
                report = OriginationReport()
                file = await conn.fetchrow("SELECT * FROM ach_files WHERE status <> 'uploaded'")
                if file is not None:
                    report.reused_unsent_file = True
                else:
                    file = await self._write(conn, now)
                    if file is None:
                        return report
                report.file_name = file["name"]
                report.entries = file["entry_count"]
                report.prenotes = file["prenote_count"]
                report.debit_total_cents = file["debit_total_cents"]
                await self._upload(conn, file, report, now)
                return report
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtext('nacha-origination'))")

    async def _due(self, conn: asyncpg.Connection, today: date) -> list[asyncpg.Record]:
        prenotes = await conn.fetch(
            "SELECT * FROM ach_entries WHERE kind = 'prenote' AND status = 'waiting' AND file_id IS NULL"
            " ORDER BY created_at, id"
        )
        debits = await conn.fetch(
            "SELECT e.*, p.status AS prenote_status, p.effective_date AS prenote_effective,"
            " EXISTS (SELECT 1 FROM ach_notices n WHERE n.entry_id = p.id) AS prenote_noticed"
            " FROM ach_entries e JOIN ach_prenotes a ON a.bank_fingerprint = e.bank_fingerprint"
            " JOIN ach_entries p ON p.id = a.entry_id"
            " WHERE e.kind = 'debit' AND e.status = 'waiting' AND e.file_id IS NULL ORDER BY e.created_at, e.id"
        )
        cleared = [
            d
            for d in debits
            if d["prenote_status"] in ("sent", "settled")
            and d["prenote_effective"] is not None
            and not d["prenote_noticed"]
            and calendar.add_banking_days(d["prenote_effective"], self.config.prenote_wait_days) <= today
        ]
        return [*prenotes, *cleared]

    async def _write(self, conn: asyncpg.Connection, now: datetime) -> asyncpg.Record | None:
        config = self.config
        today = calendar.bank_today(now, config.cutoff_zone)
        effective = calendar.effective_date(calendar.next_file_day(now, config.cutoff, config.cutoff_zone))
        async with conn.transaction():
            due = await self._due(conn, today)
            if not due:
                return None
            used = {
                r["file_id_modifier"]
                for r in await conn.fetch(
                    "SELECT file_id_modifier FROM ach_files WHERE file_date = $1", today
                )
            }
            modifier = next_file_id_modifier(used)  # FileIdsExhausted after 36 files in a day
            entries = [
                OutgoingEntry(
                    transaction_code=row["transaction_code"],
                    routing_number=row["routing_number"],
                    account_number=self.sealer.open(
                        row["account_number_sealed"], bound_to=row["id"]
                    ).decode(),
                    amount_cents=row["amount_cents"],
                    individual_id=row["individual_id"],
                    individual_name=row["individual_name"],
                    trace_number=row["trace_number"],
                )
                for row in due
            ]
            text = write_ach_file(config, entries, created_at=now, modifier=modifier, effective=effective)
            check_written(text)  # read back: a file that does not check is never stored or sent
            body = text.encode("ascii")
            file_id = "achf_" + uuid.uuid4().hex[:20]
            name = f"PORTALPAY-{today:%Y%m%d}-{modifier}.ach"
            file = await conn.fetchrow(
                "INSERT INTO ach_files (id, name, file_date, file_id_modifier, sha256, entry_count,"
                " prenote_count, batch_count, debit_total_cents, body_sealed, status)"
                " VALUES ($1,$2,$3,$4,$5,$6,$7,1,$8,$9,'written') RETURNING *",
                file_id,
                name,
                today,
                modifier,
                hashlib.sha256(body).hexdigest(),
                len(entries),
                sum(1 for r in due if r["kind"] == "prenote"),
                sum(e.amount_cents for e in entries),
                self.sealer.seal(body, bound_to=file_id),
            )
            await conn.execute(
                "UPDATE ach_entries SET file_id = $2, effective_date = $3 WHERE id = ANY($1::text[])",
                [r["id"] for r in due],
                file_id,
                effective,
            )
            return file

    async def _upload(
        self, conn: asyncpg.Connection, file: asyncpg.Record, report: OriginationReport, now: datetime
    ) -> None:
        body = self.sealer.open(file["body_sealed"], bound_to=file["id"])
        try:
            await self.upload(file["name"], body)
        except UploadFailed as exc:
            report.error = str(exc)
            row = await conn.fetchrow(
                "UPDATE ach_files SET status = 'failed', upload_attempts = upload_attempts + 1,"
                " last_attempt_at = now(), last_error = $2 WHERE id = $1 RETURNING *",
                file["id"],
                str(exc)[:500],
            )
            report.upload_attempts = row["upload_attempts"]
            if (
                row["staff_notified_at"] is None
                and now - row["created_at"] >= STAFF_AFTER
                and self.tell_staff
            ):
                await self.tell_staff(
                    f"NACHA file {row['name']} not uploaded for 30 minutes",
                    f"The NACHA file {row['name']} ({row['entry_count']} entries, debits"
                    f" {row['debit_total_cents'] / 100:,.2f} USD) could not be uploaded to the bank since"
                    f" {row['created_at']:%Y-%m-%d %H:%M} UTC: {str(exc)[:300]}. Its entries are not sent;"
                    " PortalPay keeps trying. Check NACHA_SFTP_URL and the bank's server.",
                )
                await conn.execute("UPDATE ach_files SET staff_notified_at = now() WHERE id = $1", file["id"])
                report.staff_told = True
            return
        # Once sent, the file is kept as `nacha show` prints it: account numbers cut to their last
        # four (SPEC §9: a full number is held only until its file is sent). sha256 stays the sent one.
        kept = self.sealer.seal(mask_account_numbers(body.decode("ascii")).encode(), bound_to=file["id"])
        async with conn.transaction():
            row = await conn.fetchrow(
                "UPDATE ach_files SET status = 'uploaded', uploaded_at = now(), body_sealed = $2,"
                " upload_attempts = upload_attempts + 1, last_attempt_at = now(), last_error = NULL"
                " WHERE id = $1 AND status <> 'uploaded' RETURNING *",
                file["id"],
                kept,
            )
            if row is None:
                return
            sent = await conn.fetch(
                "UPDATE ach_entries SET status = 'sent', sent_at = now(), account_number_sealed = NULL"
                " WHERE file_id = $1 AND status = 'waiting' RETURNING *",
                file["id"],
            )
            await self._audit(conn, row, sent)
        report.uploaded = True
        report.upload_attempts = row["upload_attempts"]

    async def _audit(self, conn: asyncpg.Connection, file: Any, sent: list[asyncpg.Record]) -> None:
        payers = {
            r["id"]: r
            for r in await conn.fetch(
                "SELECT id, invoice_id, customer_id, payer_contact_id FROM payments WHERE id = ANY($1::text[])",
                [e["payment_id"] for e in sent if e["payment_id"]],
            )
        }
        for entry in sent:
            pay = payers.get(entry["payment_id"])
            prenote = entry["kind"] == "prenote"
            await append_event(
                conn,
                AuditEventInput(
                    event_key=f"nacha/{file['id']}/{entry['id']}",
                    event_type=AuditEventType.PRENOTE_SENT if prenote else AuditEventType.NACHA_FILE_SENT,
                    invoice_id=pay["invoice_id"] if pay else entry["invoice_id"],
                    customer_id=pay["customer_id"] if pay else None,
                    payer_contact_id=pay["payer_contact_id"] if pay else None,
                    client=ClientContext(actor="nacha"),
                    details={
                        "file_name": file["name"],
                        "file_sha256": file["sha256"],
                        "payment_id": entry["payment_id"],
                        "trace_number": entry["trace_number"],
                        "transaction_code": entry["transaction_code"],
                        "amount_cents": entry["amount_cents"],
                        "account_last4": entry["account_last4"],
                        "effective_date": entry["effective_date"].isoformat(),
                    },
                    occurred_at=datetime.now(UTC),
                ),
                key=self.audit_key,
            )
