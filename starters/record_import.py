"""CSV import of customers, contacts and invoices (SPEC §12), for `portalpay import` and `/staff/import`.

Every row is checked with the API's own rules (`starters/company_records.py`): a dry run (the
default) answers what would be created, updated, unchanged or failed without writing; `commit`
writes the good rows and answers the same report. A failed row names its line, column and reason.
Idempotent by external id: importing the same file again changes nothing. A file may hold one
payer (and one primary contact) per customer: a second fails that row.
"""

import contextlib
import csv
import io
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import asyncpg

from domain.activity_io import AuditEventInput
from domain.attempt import ClientContext
from domain.audit import AuditEventType
from domain.company_records import (
    ContactFields,
    RecordFieldError,
    checked_contact,
    checked_customer,
    checked_invoice,
    clean_external_id,
    clean_text,
    parse_date,
    parse_dollars,
    parse_flag,
)
from infra.stores.audit_trail import append_event
from starters.company_records import (
    AMOUNT_CHANGED_REASON,
    RecordRefused,
    Upserted,
    cancel_running_attempt,
    lock_customers,
    upsert_contact,
    upsert_customer,
    upsert_invoice,
)
from starters.staff_changes.actions import StaffServices

MAX_ROWS = 10_000


class ImportKind(StrEnum):
    CUSTOMERS = "customers"
    CONTACTS = "contacts"
    INVOICES = "invoices"


HEADERS: dict[ImportKind, tuple[str, ...]] = {
    ImportKind.CUSTOMERS: ("external_id", "name"),
    ImportKind.CONTACTS: (
        "external_id",
        "customer_external_id",
        "name",
        "email",
        "phone",
        "primary",
        "portal_payer",
    ),
    ImportKind.INVOICES: (
        "external_id",
        "customer_external_id",
        "number",
        "kind",
        "amount",
        "currency",
        "due_date",
    ),
}
# The API's field names where the CSV's differ.
_COLUMN_FOR_FIELD = {"amount_cents": "amount"}


@dataclass(frozen=True)
class RowError:
    line: int
    column: str | None
    reason: str


@dataclass
class ImportReport:
    kind: ImportKind
    committed: bool
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    errors: list[RowError] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # after-commit effects that did not happen
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def fail(self, line: int, column: str | None, reason: str) -> None:
        self.failed += 1
        self.errors.append(RowError(line, column, reason))

    def count(self, result: Upserted) -> None:
        setattr(self, result.status, getattr(self, result.status) + 1)
        self.problems.extend(result.problems)


class ImportRefused(Exception):
    """The file as a whole cannot be read (encoding, header, size): no row was looked at."""


def read_rows(kind: ImportKind, data: bytes) -> list[tuple[int, dict[str, str]]]:
    """(line, row) pairs; UTF-8 with or without a BOM, the header exactly the kind's columns."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRefused(f"the file is not UTF-8 (byte {exc.start + 1})") from None
    if "\x00" in text:
        raise ImportRefused("the file holds NUL characters: it is not a CSV text file")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportRefused("the file is empty") from None
    except csv.Error as exc:
        raise ImportRefused(f"line 1: {exc}") from None
    wanted = HEADERS[kind]
    got = tuple(h.strip() for h in header)
    if set(got) != set(wanted) or len(got) != len(wanted):
        raise ImportRefused(f"the header must be {','.join(wanted)} (got {','.join(got)[:200]})")
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue  # a blank line
            if len(rows) >= MAX_ROWS:
                raise ImportRefused(f"the file has more than {MAX_ROWS} rows: split it")
            if len(cells) != len(got):
                rows.append((line, {"__error__": f"{len(cells)} cells where the header has {len(got)}"}))
                continue
            rows.append((line, dict(zip(got, cells, strict=True))))
    except csv.Error as exc:
        raise ImportRefused(f"line {reader.line_num}: {exc}") from None
    return rows


def _column(field_name: str | None) -> str | None:
    return _COLUMN_FOR_FIELD.get(field_name, field_name) if field_name else None


# Customer and invoice rows commit in batches (one savepoint an invoice row): ten thousand commits,
# each waiting for the disk, were most of a large import's time. A customer batch (a dry run's
# too) first takes all its rows' locks and reads those that exist in one go (`lock_customers`),
# so an unchanged row costs no round trip and a new one only its insert and audit row. An invoice
# change that cancels a running attempt cancels it once its batch has committed (a cancel must
# follow a real change). Contacts commit row by row: a payer change tells both addresses, which
# the shared contact path does right after its own commit.
BATCH_ROWS = 500


@dataclass
class _FileState:
    """What earlier rows of the same file claimed: their external ids, payers and primaries."""

    seen: dict[str, int] = field(default_factory=dict)
    payer_for: dict[str, int] = field(default_factory=dict)
    primary_for: dict[str, int] = field(default_factory=dict)
    # Invoices whose running attempt is to be cancelled when the current batch commits.
    cancel_after_commit: list[str] = field(default_factory=list)
    # The current customer batch's rows, locked (`lock_customers`).
    customers: dict[str, asyncpg.Record] = field(default_factory=dict)


async def run_import(
    services: StaffServices,
    kind: ImportKind,
    data: bytes,
    *,
    commit: bool,
    client: ClientContext,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    started = time.monotonic()
    rows = read_rows(kind, data)
    report = ImportReport(kind=kind, committed=commit, rows=len(rows))
    state = _FileState()
    batching = kind is ImportKind.CUSTOMERS or (commit and kind is ImportKind.INVOICES)
    batch = BATCH_ROWS if batching else 1
    async with services.pool.acquire() as conn:
        for start in range(0, len(rows), batch):
            async with conn.transaction() if batch > 1 else contextlib.nullcontext():
                if kind is ImportKind.CUSTOMERS:
                    state.customers = await lock_customers(conn, _customer_ids(rows[start : start + batch]))
                for line, row in rows[start : start + batch]:
                    await _import_row(
                        services, kind, conn, line, row, state, report, commit=commit, client=client
                    )
            for invoice_id in state.cancel_after_commit:
                report.problems += await cancel_running_attempt(
                    services, invoice_id, AMOUNT_CHANGED_REASON, client
                )
            state.cancel_after_commit.clear()
            done = start + batch
            if progress is not None and done // 1000 != start // 1000:
                progress(min(done, len(rows)))
        if commit and (report.created or report.updated):
            await _audit_import(conn, services, report, client)
    report.seconds = round(time.monotonic() - started, 2)
    return report


async def _import_row(
    services: StaffServices,
    kind: ImportKind,
    conn: asyncpg.Connection,
    line: int,
    row: dict[str, str],
    state: _FileState,
    report: ImportReport,
    *,
    commit: bool,
    client: ClientContext,
) -> None:
    if "__error__" in row:
        report.fail(line, None, row["__error__"])
        return
    key = row["external_id"].strip()
    if kind is ImportKind.CONTACTS:
        key = f"{row['customer_external_id'].strip()}\x1f{key}"
    if key in state.seen:
        report.fail(line, "external_id", f"the same external_id is on line {state.seen[key]}")
        return
    state.seen[key] = line
    max_cents = services.settings.max_invoice_cents
    try:
        if kind is ImportKind.CUSTOMERS:
            fields = checked_customer(row["external_id"].strip(), row["name"])
            result = await upsert_customer(
                services, fields, client, dry_run=not commit, conn=conn, locked=state.customers
            )
        elif kind is ImportKind.INVOICES:
            invoice = checked_invoice(
                row["external_id"].strip(),
                row["customer_external_id"].strip(),
                row["number"],
                row["kind"].strip(),
                parse_dollars(row["amount"], max_cents),
                row["currency"].strip() or "USD",
                parse_date(row["due_date"]),
                max_cents=max_cents,
            )
            result = await upsert_invoice(
                services,
                invoice,
                client,
                dry_run=not commit,
                conn=conn,
                cancel_later=state.cancel_after_commit if commit else None,
            )
        else:
            contact = _contact_fields(row)
            customer = contact.customer_external_id
            for flag, owners, column in (
                (contact.portal_payer, state.payer_for, "portal_payer"),
                (contact.primary, state.primary_for, "primary"),
            ):
                if flag and customer in owners:
                    raise RecordFieldError(
                        column,
                        f"a second {column} contact for customer {customer} (the first is on line {owners[customer]})",
                    )
            if contact.portal_payer:
                state.payer_for[customer] = line
            if contact.primary:
                state.primary_for[customer] = line
            result = await upsert_contact(services, contact, client, dry_run=not commit)
    except (RecordFieldError, RecordRefused) as exc:
        report.fail(line, _column(exc.field), exc.message)
        return
    report.count(result)


def _customer_ids(rows: list[tuple[int, dict[str, str]]]) -> list[str]:
    """The external ids a batch of customer rows may write: those that pass the API's own check."""
    ids = []
    for _, row in rows:
        try:
            ids.append(clean_external_id(row["external_id"].strip()))
        except (KeyError, RecordFieldError):
            continue  # the row fails on its own turn
    return ids


def _contact_fields(row: Mapping[str, str]) -> ContactFields:
    details: dict[str, str | None] = {}
    for name in ("email", "phone"):
        value = row[name].strip()
        if value:
            details[name] = value
    return checked_contact(
        row["customer_external_id"].strip(),
        row["external_id"].strip(),
        clean_text(row["name"], "name"),
        details,
        parse_flag(row["primary"], "primary"),
        parse_flag(row["portal_payer"], "portal_payer"),
    )


async def _audit_import(
    conn: Any, services: StaffServices, report: ImportReport, client: ClientContext
) -> None:
    await append_event(
        conn,
        key=services.settings.audit_key(),
        event=AuditEventInput(
            event_key=f"import:{report.kind}:{uuid.uuid4().hex}",
            event_type=AuditEventType.IMPORT_COMMITTED,
            invoice_id=None,
            customer_id=None,
            payer_contact_id=None,
            client=client,
            details={
                "kind": str(report.kind),
                "rows": report.rows,
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "failed": report.failed,
            },
            occurred_at=datetime.now(UTC),
        ),
    )


def report_json(report: ImportReport) -> dict[str, Any]:
    return {
        "kind": str(report.kind),
        "committed": report.committed,
        "rows": report.rows,
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "failed": report.failed,
        "errors": [{"line": e.line, "column": e.column, "reason": e.reason} for e in report.errors],
        "problems": report.problems,
        "seconds": report.seconds,
    }


def report_lines(report: ImportReport) -> list[str]:
    verb = "" if report.committed else "would be "
    lines = [
        f"{report.kind}: {report.rows} rows: {report.created} {verb}created, {report.updated} {verb}updated,"
        f" {report.unchanged} unchanged, {report.failed} failed"
        + ("" if report.committed else " (dry run: nothing written; add --commit to write the good rows)")
    ]
    lines += [f"line {e.line}, column {e.column or '-'}: {e.reason}" for e in report.errors]
    lines += [f"not done: {p}" for p in report.problems]
    return lines
