"""The strict check of a file we wrote, run before it is stored or uploaded (SPEC §13).

Everything a bank or an ACH operator would reject is looked for: record length and characters,
line ends, record order, counts, entry hashes, debit and credit totals, batch numbers, trace order,
block count and the `9` padding. The writer should never produce a file that fails; this is the
second pair of eyes that keeps a writer bug from reaching the bank.
"""

from collections.abc import Sequence
from datetime import datetime

from domain.input_rules import is_valid_aba_routing
from domain.nacha import fields as f
from domain.nacha.ascii_text import is_printable_ascii
from domain.nacha.file_ids import FILE_ID_MODIFIERS
from domain.nacha.model import DEBIT_CODES, PRENOTE_CODES, Problem


class _Check:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def expect(self, ok: bool, line: int, message: str) -> None:
        if not ok:
            self.problems.append(Problem(line, message))

    def digits(self, values: dict[str, str], line: int, *names: str) -> bool:
        bad = [n for n in names if not (values[n].isascii() and values[n].isdigit())]
        for name in bad:
            self.problems.append(Problem(line, f"{name.replace('_', ' ')} is not digits"))
        return not bad


def _valid_date(text: str) -> bool:
    try:
        datetime.strptime(text, "%y%m%d")
    except ValueError:
        return False
    return True


def _hash10(total: int) -> str:
    return str(total)[-10:].rjust(10, "0")


def _check_file_header(c: _Check, record: str) -> None:
    v = f.cut_fields(f.FILE_HEADER, record)
    for field_ in f.FILE_HEADER.fields:
        if field_.constant is not None:
            c.expect(
                v[field_.name] == field_.constant, 1, f"file header {field_.name} is not {field_.constant}"
            )
    destination = v["immediate_destination"]
    c.expect(
        destination[0] == " " and is_valid_aba_routing(destination[1:]),
        1,
        "immediate destination is not a routing number",
    )
    c.expect(_valid_date(v["file_creation_date"]), 1, "file creation date is not a YYMMDD date")
    c.expect(v["file_id_modifier"] in FILE_ID_MODIFIERS, 1, "file id modifier is not A-Z or 0-9")


class _Batch:
    def __init__(self, line: int, header: dict[str, str]) -> None:
        self.line = line
        self.header = header
        self.count = 0
        self.hash = 0
        self.debits = 0
        self.last_trace = ""


def _check_entry(c: _Check, batch: _Batch, line: int, record: str, traces: set[str]) -> None:
    v = f.cut_fields(f.ENTRY_DETAIL, record)
    batch.count += 1
    if not c.digits(
        v, line, "transaction_code", "receiving_dfi_identification", "check_digit", "amount", "trace_number"
    ):
        return
    code, amount, trace = v["transaction_code"], int(v["amount"]), v["trace_number"]
    c.expect(
        code in DEBIT_CODES | PRENOTE_CODES,
        line,
        f"transaction code {code} is not a debit or a debit prenote",
    )
    c.expect(amount == 0 or code not in PRENOTE_CODES, line, "a prenote carries an amount")
    c.expect(amount > 0 or code not in DEBIT_CODES, line, "a debit of zero")
    c.expect(
        is_valid_aba_routing(v["receiving_dfi_identification"] + v["check_digit"]),
        line,
        "RDFI check digit is wrong",
    )
    c.expect(bool(v["dfi_account_number"].strip()), line, "no account number")
    c.expect(bool(v["individual_identification_number"].strip()), line, "no individual id")
    c.expect(bool(v["individual_name"].strip()), line, "no individual name")
    c.expect(v["discretionary_data"] == "S ", line, "payment type code is not S")
    c.expect(v["addenda_record_indicator"] == "0", line, "addenda indicator set, but we write no addenda")
    c.expect(
        trace.startswith(batch.header["originating_dfi_identification"]),
        line,
        "trace number does not start with the ODFI id",
    )
    c.expect(trace > batch.last_trace, line, "trace numbers are not ascending in the batch")
    c.expect(trace not in traces, line, f"trace {trace} appears twice")
    traces.add(trace)
    batch.last_trace = trace
    batch.hash += int(v["receiving_dfi_identification"])
    batch.debits += amount


def _check_batch_header(c: _Check, line: int, record: str, number: int) -> _Batch:
    v = f.cut_fields(f.BATCH_HEADER, record)
    c.expect(v["service_class_code"] == "225", line, "service class is not 225 (debits only)")
    c.expect(v["standard_entry_class_code"] == "WEB", line, "SEC code is not WEB")
    c.expect(bool(v["company_name"].strip()), line, "no company name")
    c.expect(_valid_date(v["effective_entry_date"]), line, "effective entry date is not a YYMMDD date")
    c.expect(v["originator_status_code"] == "1", line, "originator status code is not 1")
    c.digits(v, line, "originating_dfi_identification")
    c.expect(v["batch_number"] == f"{number:07d}", line, f"batch number is not {number}")
    return _Batch(line, v)


def _check_batch_control(c: _Check, line: int, record: str, batch: _Batch) -> None:
    v = f.cut_fields(f.BATCH_CONTROL, record)
    h = batch.header
    c.expect(
        v["service_class_code"] == h["service_class_code"],
        line,
        "batch control service class differs from its header",
    )
    c.expect(
        v["entry_addenda_count"] == f"{batch.count:06d}", line, f"batch entry count is not {batch.count}"
    )
    c.expect(v["entry_hash"] == _hash10(batch.hash), line, f"batch entry hash is not {_hash10(batch.hash)}")
    c.expect(
        v["total_debit_entry_dollar_amount"] == f"{batch.debits:012d}",
        line,
        f"batch debit total is not {batch.debits}",
    )
    c.expect(v["total_credit_entry_dollar_amount"] == "0" * 12, line, "batch credit total is not zero")
    c.expect(
        v["company_identification"] == h["company_identification"],
        line,
        "batch control company id differs from its header",
    )
    c.expect(
        v["originating_dfi_identification"] == h["originating_dfi_identification"],
        line,
        "batch control ODFI differs",
    )
    c.expect(v["batch_number"] == h["batch_number"], line, "batch control number differs from its header")


def _check_file_control(c: _Check, line: int, record: str, batches: Sequence[_Batch], records: int) -> None:
    v = f.cut_fields(f.FILE_CONTROL, record)
    count = sum(b.count for b in batches)
    hash_sum = sum(b.hash for b in batches)
    debits = sum(b.debits for b in batches)
    blocks = -(-records // f.BLOCKING_FACTOR)
    c.expect(v["batch_count"] == f"{len(batches):06d}", line, f"file batch count is not {len(batches)}")
    c.expect(v["block_count"] == f"{blocks:06d}", line, f"file block count is not {blocks}")
    c.expect(v["entry_addenda_count"] == f"{count:08d}", line, f"file entry count is not {count}")
    c.expect(v["entry_hash"] == _hash10(hash_sum), line, f"file entry hash is not {_hash10(hash_sum)}")
    c.expect(
        v["total_debit_entry_dollar_amount"] == f"{debits:012d}", line, f"file debit total is not {debits}"
    )
    c.expect(v["total_credit_entry_dollar_amount"] == "0" * 12, line, "file credit total is not zero")
    c.expect(not v["reserved"].strip(), line, "file control reserved columns are not blank")


def _check_records(c: _Check, lines: Sequence[str]) -> None:
    batches: list[_Batch] = []
    batch: _Batch | None = None
    traces: set[str] = set()
    control_line = 0
    for number, record in enumerate(lines, start=1):
        kind = record[:1]
        if control_line:
            c.expect(
                record == f.PADDING_RECORD,
                number,
                "after the file control only `9` padding records may follow",
            )
            continue
        if number == 1:
            c.expect(kind == "1", 1, "the file does not start with a file header")
            if kind == "1":
                _check_file_header(c, record)
                continue
        if kind == "5":
            c.expect(batch is None, number, "a batch header inside a batch")
            batch = _check_batch_header(c, number, record, len(batches) + 1)
        elif kind == "6" and batch is not None:
            _check_entry(c, batch, number, record, traces)
        elif kind == "8" and batch is not None:
            _check_batch_control(c, number, record, batch)
            batches.append(batch)
            batch = None
        elif kind == "9" and batch is None and record != f.PADDING_RECORD:
            control_line = number
            _check_file_control(c, number, record, batches, len(lines))
        else:
            c.problems.append(Problem(number, f"record type {kind!r} is out of place"))
    c.expect(batch is None, len(lines), "the last batch has no batch control")
    c.expect(bool(control_line), len(lines), "no file control record")
    c.expect(bool(batches), 0, "the file holds no batch")


def check_file(text: str) -> list[Problem]:
    """Every way `text` is not a well-formed WEB debit file of ours; empty when it may be sent."""
    c = _Check()
    if not text.endswith("\n"):
        c.problems.append(Problem(0, "the file does not end with a line break"))
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, record in enumerate(lines, start=1):
        if len(record) != f.RECORD_LENGTH:
            c.problems.append(Problem(number, f"record is {len(record)} characters, not {f.RECORD_LENGTH}"))
        elif not is_printable_ascii(record):
            c.problems.append(Problem(number, "record holds characters that are not printable ASCII"))
    if len(lines) % f.BLOCKING_FACTOR:
        c.problems.append(Problem(0, f"{len(lines)} records is not a multiple of {f.BLOCKING_FACTOR}"))
    if c.problems:
        return c.problems  # columns cannot be trusted: checking fields would only add noise
    _check_records(c, lines)
    return c.problems
