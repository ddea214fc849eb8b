"""Reading what a bank sends back: returns (addenda 99) and notices of change (addenda 98).

Lenient on purpose (SPEC §13): banks omit file headers, batch headers and controls, strip trailing
spaces, or run records together without line breaks. What can be read is read; a record that
cannot be read becomes a `Problem` with its line number, and the reader never raises, whatever
the bytes, because one bad line must not hide the returns on the good ones.

`check_file` (the strict read-back of a file we wrote) lives in read_back.py and is re-exported here.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from domain.nacha import fields as f
from domain.nacha.ascii_text import is_printable_ascii
from domain.nacha.change_codes import CHANGE_CODES
from domain.nacha.model import NoticeOfChange, Problem, ReadEntry, ReadResult, ReturnEntry
from domain.nacha.read_back import check_file

__all__ = ["check_file", "read_file"]

_RETURN_CODE = re.compile(r"R[0-9]{2}", re.ASCII)


def _is_digits(text: str) -> bool:
    return bool(text) and text.isascii() and text.isdigit()


def _yymmdd(text: str) -> date | None:
    try:
        return datetime.strptime(text, "%y%m%d").date() if _is_digits(text) else None
    except ValueError:
        return None


@dataclass
class _Entry:
    line_number: int
    fields: dict[str, str]
    effective_date: date | None
    answered: bool = False  # a return or a notice is attached: not a forward entry


@dataclass
class _State:
    effective_date: date | None = None
    entry: _Entry | None = None
    entries: list[_Entry] = field(default_factory=list)
    returns: list[ReturnEntry] = field(default_factory=list)
    notices: list[NoticeOfChange] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def _records(text: str) -> Iterator[tuple[int, str, str, int]]:
    """(line number, record, where, line length) for each record; a line holding several records
    run together is cut every 94 characters."""
    # Not str.splitlines(): it also breaks on \x0b, \x1c and friends found inside damaged records.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        if len(line) <= f.RECORD_LENGTH:
            yield number, line, "", len(line)
            continue
        for index in range(0, len(line), f.RECORD_LENGTH):
            chunk = line[index : index + f.RECORD_LENGTH]
            if chunk.strip():
                yield number, chunk, f"record {index // f.RECORD_LENGTH + 1} of the line: ", len(line)


def _read_entry(state: _State, number: int, record: str) -> str | None:
    values = f.cut_fields(f.ENTRY_DETAIL, record)
    for name in ("transaction_code", "receiving_dfi_identification", "check_digit", "amount", "trace_number"):
        if not _is_digits(values[name]):
            return f"entry detail: {name.replace('_', ' ')} is not digits"
    entry = _Entry(number, values, state.effective_date)
    state.entry = entry
    state.entries.append(entry)
    return None


def _read_return(state: _State, number: int, record: str, entry: _Entry) -> str | None:
    values = f.cut_fields(f.ADDENDA_99, record)
    code = values["return_reason_code"].strip()
    original = values["original_entry_trace_number"]
    if not _RETURN_CODE.fullmatch(code):
        return f"return: {code!r} is not a return reason code (R and two digits); not acted on"
    if not _is_digits(original) or len(original) != 15:
        return "return: the original trace number is not 15 digits; not acted on"
    e = entry.fields
    state.returns.append(
        ReturnEntry(
            line_number=number,
            original_trace=original,
            return_code=code,
            original_rdfi=values["original_receiving_dfi_identification"].strip(),
            amount_cents=int(e["amount"]),
            transaction_code=e["transaction_code"],
            trace_number=e["trace_number"],
            individual_id=e["individual_identification_number"].strip(),
            addenda_information=values["addenda_information"].strip(),
            date_of_death=values["date_of_death"].strip(),
        )
    )
    return None


def _read_notice(state: _State, number: int, record: str, entry: _Entry) -> str | None:
    values = f.cut_fields(f.ADDENDA_98, record)
    code = values["change_code"].strip()
    original = values["original_entry_trace_number"]
    if code not in CHANGE_CODES:  # refused-notice codes (C61-C69) and junk are not acted on
        return f"notice of change: code {code!r} is not C01-C13; refused, not acted on"
    if not _is_digits(original) or len(original) != 15:
        return "notice of change: the original trace number is not 15 digits; refused, not acted on"
    corrected = values["corrected_data"].strip()
    if not corrected and code != "C13":
        return f"notice of change {code}: no corrected data; refused, not acted on"
    state.notices.append(
        NoticeOfChange(
            line_number=number,
            original_trace=original,
            change_code=code,
            corrected_data=corrected,
            original_rdfi=values["original_receiving_dfi_identification"].strip(),
            trace_number=values["trace_number"].strip(),
            individual_id=entry.fields["individual_identification_number"].strip(),
        )
    )
    return None


def _orphan_addenda(record: str) -> str:
    """The problem for an addenda whose entry detail is missing or unreadable.

    A return or notice is not acted on without its entry detail, but its code and original trace
    are named so staff can find the payment by hand.
    """
    kind = record[1:3]
    if kind in ("98", "99"):
        layout = f.ADDENDA_99 if kind == "99" else f.ADDENDA_98
        values = f.cut_fields(layout, record)
        code = values["return_reason_code" if kind == "99" else "change_code"].strip()
        what = "return" if kind == "99" else "notice of change"
        trace = values["original_entry_trace_number"].strip()
        return f"{what} {code} for original trace {trace}: no readable entry detail before it; not acted on"
    return "addenda record with no readable entry detail before it"


def _read_addenda(state: _State, number: int, record: str) -> str | None:
    entry = state.entry
    if entry is None:
        return _orphan_addenda(record)
    kind = record[1:3]
    if kind not in ("98", "99"):
        return None  # payment-related information: nothing to act on
    if entry.answered:
        return "a second return or notice for the same entry detail; not acted on"
    entry.answered = True
    return (
        _read_return(state, number, record, entry)
        if kind == "99"
        else _read_notice(state, number, record, entry)
    )


def _read_record(state: _State, number: int, record: str) -> str | None:
    if record == f.PADDING_RECORD:
        return None
    if not is_printable_ascii(record):
        state.entry = None
        return "holds characters that are not printable ASCII; skipped"
    kind = record[0]
    if kind == "7":
        return _read_addenda(state, number, record)
    state.entry = None
    if kind == "6":
        return _read_entry(state, number, record)
    if kind == "5":
        state.effective_date = _yymmdd(f.BATCH_HEADER.field("effective_entry_date").cut(record.ljust(94)))
        return None
    if kind in ("1", "8", "9"):
        if kind == "1":
            state.effective_date = None
        return None
    return f"unknown record type {kind!r}; skipped"


def read_file(text: str | bytes) -> ReadResult:
    """Every return, notice and forward entry that can be read, and a Problem for each line that cannot."""
    state = _State()
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = text.removeprefix("\ufeff")  # a byte-order mark some Windows tools put first
    run_together = 0
    for number, record, where, length in _records(text):
        if where and run_together != number:
            run_together = number
            state.problems.append(
                Problem(
                    number, f"{length} characters: records without line breaks, read 94 characters at a time"
                )
            )
        try:
            problem = _read_record(state, number, record)
        except Exception as exc:  # last resort: a reader bug must not hide the other lines' returns
            state.entry = None
            problem = f"could not be read ({type(exc).__name__})"
        if problem:
            state.problems.append(Problem(number, where + problem))
    if not any(True for _ in _records(text)):
        state.problems.append(Problem(0, "the file holds no records"))
    forward = tuple(
        ReadEntry(
            line_number=e.line_number,
            transaction_code=e.fields["transaction_code"],
            rdfi_routing=e.fields["receiving_dfi_identification"] + e.fields["check_digit"],
            account_number=e.fields["dfi_account_number"].strip(),
            amount_cents=int(e.fields["amount"]),
            individual_id=e.fields["individual_identification_number"].strip(),
            individual_name=e.fields["individual_name"].strip(),
            discretionary_data=e.fields["discretionary_data"],
            trace_number=e.fields["trace_number"],
            effective_date=e.effective_date,
        )
        for e in state.entries
        if not e.answered
    )
    return ReadResult(tuple(state.returns), tuple(state.notices), forward, tuple(state.problems))
