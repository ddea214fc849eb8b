"""The NACHA file PortalPay sends its bank: one WEB debit batch per effective date.

Every value is checked before a single record is built. A name that is too long is cut (the bank
only shows it); a value that identifies something (a routing number, an account number, a trace
number, an id, an amount) is refused with ValueError instead, because cutting it would send the
money somewhere else or make a return impossible to match. The messages never quote an account
number.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from domain.input_rules import is_valid_aba_routing
from domain.nacha import fields as f
from domain.nacha.ascii_text import cut_name, is_printable_ascii
from domain.nacha.file_ids import FILE_ID_MODIFIERS
from domain.nacha.model import DEBIT_CODES, PRENOTE_CODES, Batch, DebitEntry, Originator

SEC_CODE = "WEB"
SERVICE_CLASS_DEBITS_ONLY = "225"
PAYMENT_TYPE_SINGLE = "S "
MAX_ENTRY_CENTS = 9_999_999_999  # 10 digits
MAX_TOTAL_CENTS = 999_999_999_999  # 12 digits


def _digits(value: str, length: int) -> bool:
    return len(value) == length and value.isascii() and value.isdigit()


def entry_hash(rdfi_routings: Iterable[str]) -> str:
    """The sum of the 8-digit RDFI ids (routing numbers without their check digit), its rightmost 10 digits."""
    total = sum(int(routing[:8]) for routing in rdfi_routings)
    return str(total)[-10:].rjust(10, "0")


def _identity_problems(originator: Originator) -> list[str]:
    problems: list[str] = []
    if not is_valid_aba_routing(originator.immediate_destination):
        problems.append(
            "NACHA_IMMEDIATE_DESTINATION must be the bank's 9-digit routing number (check digit included)"
        )
    if len(originator.immediate_origin) != 10 or not is_printable_ascii(originator.immediate_origin):
        problems.append("NACHA_IMMEDIATE_ORIGIN must be exactly 10 ASCII characters")
    if len(originator.company_id) != 10 or not is_printable_ascii(originator.company_id):
        problems.append("NACHA_COMPANY_ID must be exactly 10 ASCII characters")
    if not _digits(originator.odfi_id, 8):
        problems.append("NACHA_ODFI_ID must be 8 digits")
    return problems


_NAMES = (
    ("NACHA_COMPANY_NAME", "company_name", 16),
    ("NACHA_ENTRY_DESCRIPTION", "entry_description", 10),
    ("NACHA_DESTINATION_NAME", "destination_name", 23),
    ("NACHA_ORIGIN_NAME", "origin_name", 23),
)


def _empty_name_problems(originator: Originator) -> list[str]:
    return [
        f"{setting} must hold at least one ASCII letter or digit"
        for setting, attribute, limit in _NAMES
        if not cut_name(getattr(originator, attribute), limit)
    ]


def originator_problems(originator: Originator) -> list[str]:
    """What is wrong with the NACHA_* settings, one line each, for the start-up check.

    Stricter than `write_file`, which cuts an over-long name: at start-up the operator is told
    the setting is too long, instead of finding it cut on a bank statement.
    """
    problems = _identity_problems(originator) + _empty_name_problems(originator)
    for setting, attribute, limit in _NAMES:
        if len(getattr(originator, attribute)) > limit:
            problems.append(f"{setting} is at most {limit} characters")
    return problems


def entry_problem(entry: DebitEntry, odfi_id: str) -> str | None:
    """Why `entry` cannot go in a file (one line, no account number in it), or None.

    `write_file` refuses the whole file for one such entry, so check each entry when it is
    accepted, not when the file is written.
    """
    trace = entry.trace_number
    if entry.transaction_code not in DEBIT_CODES | PRENOTE_CODES:
        return f"trace {trace}: transaction code {entry.transaction_code!r} is not 27, 37 (debit) or 28, 38 (prenote)"
    if not is_valid_aba_routing(entry.rdfi_routing):
        return f"trace {trace}: the RDFI routing number is not 9 digits with a valid check digit"
    account = entry.account_number
    if not account or len(account) > 17 or not is_printable_ascii(account) or account != account.strip():
        return f"trace {trace}: the account number must be 1-17 ASCII characters"
    if not isinstance(entry.amount_cents, int) or isinstance(entry.amount_cents, bool):
        return f"trace {trace}: the amount is integer cents"
    if entry.is_prenote and entry.amount_cents != 0:
        return f"trace {trace}: a prenote is zero dollars"
    if not entry.is_prenote and not 0 < entry.amount_cents <= MAX_ENTRY_CENTS:
        return f"trace {trace}: a debit is 1..{MAX_ENTRY_CENTS} cents"
    ident = entry.individual_id
    if not ident.strip() or len(ident) > 15 or not is_printable_ascii(ident):
        return f"trace {trace}: the individual id must be 1-15 ASCII characters"
    if not cut_name(entry.individual_name, 22):
        return f"trace {trace}: the payer's name has no letter or digit that can be written in ASCII"
    if not _digits(trace, 15) or not trace.startswith(odfi_id):
        return f"trace {trace!r}: a trace number is the 8-digit ODFI id and a 7-digit sequence"
    return None


def batches_by_effective_date(dated: Iterable[tuple[date, DebitEntry]]) -> tuple[Batch, ...]:
    """Entries grouped into one batch per effective date, earliest first, each in trace order."""
    groups: dict[date, list[DebitEntry]] = defaultdict(list)
    for effective, entry in dated:
        groups[effective].append(entry)
    return tuple(
        Batch(effective, tuple(sorted(entries, key=lambda e: e.trace_number)))
        for effective, entries in sorted(groups.items())
    )


def _checked(originator: Originator, batches: Sequence[Batch], file_id_modifier: str) -> None:
    problems = _identity_problems(originator) + _empty_name_problems(originator)
    if problems:
        raise ValueError(problems[0])
    if len(file_id_modifier) != 1 or file_id_modifier not in FILE_ID_MODIFIERS:
        raise ValueError("the file id modifier is one of A-Z, 0-9")
    if not batches:
        raise ValueError("a file needs at least one batch")
    dates = [b.effective_date for b in batches]
    if len(set(dates)) != len(dates):
        raise ValueError("one batch per effective date: two batches share a date")
    traces: set[str] = set()
    total = 0
    for batch in batches:
        if not batch.entries:
            raise ValueError(f"the batch for {batch.effective_date} has no entries")
        if len(batch.entries) > 999_999:
            raise ValueError("a batch holds at most 999,999 entries")
        for entry in batch.entries:
            problem = entry_problem(entry, originator.odfi_id)
            if problem:
                raise ValueError(problem)
            if entry.trace_number in traces:
                raise ValueError(f"trace {entry.trace_number} appears twice")
            traces.add(entry.trace_number)
            total += entry.amount_cents
    if total > MAX_TOTAL_CENTS:
        raise ValueError("the file's debit total does not fit in 12 digits")


def _file_header(o: Originator, created_at: datetime, file_id_modifier: str) -> str:
    return f.render(
        f.FILE_HEADER,
        {
            "immediate_destination": " " + o.immediate_destination,
            "immediate_origin": o.immediate_origin,
            "file_creation_date": created_at.strftime("%y%m%d"),
            "file_creation_time": created_at.strftime("%H%M"),
            "file_id_modifier": file_id_modifier,
            "immediate_destination_name": cut_name(o.destination_name, 23),
            "immediate_origin_name": cut_name(o.origin_name, 23),
        },
    )


def _batch_records(o: Originator, batch: Batch, number: int) -> tuple[list[str], int, int]:
    entries = sorted(batch.entries, key=lambda e: e.trace_number)  # ascending traces in a batch
    shared = {
        "service_class_code": SERVICE_CLASS_DEBITS_ONLY,
        "originating_dfi_identification": o.odfi_id,
        "batch_number": str(number),
    }
    records = [
        f.render(
            f.BATCH_HEADER,
            {
                **shared,
                "company_name": cut_name(o.company_name, 16),
                "company_identification": o.company_id,
                "standard_entry_class_code": SEC_CODE,
                "company_entry_description": cut_name(o.entry_description, 10),
                "effective_entry_date": batch.effective_date.strftime("%y%m%d"),
            },
        )
    ]
    for e in entries:
        records.append(
            f.render(
                f.ENTRY_DETAIL,
                {
                    "transaction_code": e.transaction_code,
                    "receiving_dfi_identification": e.rdfi_routing[:8],
                    "check_digit": e.rdfi_routing[8],
                    "dfi_account_number": e.account_number,
                    "amount": str(e.amount_cents),
                    "individual_identification_number": e.individual_id,
                    "individual_name": cut_name(e.individual_name, 22),
                    "discretionary_data": PAYMENT_TYPE_SINGLE,
                    "addenda_record_indicator": "0",
                    "trace_number": e.trace_number,
                },
            )
        )
    debit_total = sum(e.amount_cents for e in entries)
    hash_sum = sum(int(e.rdfi_routing[:8]) for e in entries)
    records.append(
        f.render(
            f.BATCH_CONTROL,
            {
                **shared,
                "entry_addenda_count": str(len(entries)),
                "entry_hash": entry_hash(e.rdfi_routing for e in entries),
                "total_debit_entry_dollar_amount": str(debit_total),
                "total_credit_entry_dollar_amount": "0",
                "company_identification": o.company_id,
            },
        )
    )
    return records, debit_total, hash_sum


def write_file(
    originator: Originator, batches: Sequence[Batch], *, created_at: datetime, file_id_modifier: str
) -> str:
    """The whole file: 94-character records ending in `\\n`, padded with `9` records to a multiple of ten.

    `created_at` is written as given (date and time of its own zone). Raises ValueError, naming
    the first problem, when a value is missing, malformed or would have to be cut to fit.
    """
    _checked(originator, batches, file_id_modifier)
    records = [_file_header(originator, created_at, file_id_modifier)]
    entry_count = debit_total = hash_sum = 0
    for number, batch in enumerate(sorted(batches, key=lambda b: b.effective_date), start=1):
        batch_records, batch_debits, batch_hash = _batch_records(originator, batch, number)
        records.extend(batch_records)
        entry_count += len(batch.entries)
        debit_total += batch_debits
        hash_sum += batch_hash
    if entry_count > 99_999_999:
        raise ValueError("a file holds at most 99,999,999 entries")
    blocks = -(-(len(records) + 1) // f.BLOCKING_FACTOR)
    records.append(
        f.render(
            f.FILE_CONTROL,
            {
                "batch_count": str(len(batches)),
                "block_count": str(blocks),
                "entry_addenda_count": str(entry_count),
                "entry_hash": str(hash_sum)[-10:],
                "total_debit_entry_dollar_amount": str(debit_total),
                "total_credit_entry_dollar_amount": "0",
            },
        )
    )
    records.extend([f.PADDING_RECORD] * (blocks * f.BLOCKING_FACTOR - len(records)))
    return "".join(record + "\n" for record in records)
