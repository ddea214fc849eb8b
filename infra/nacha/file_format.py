"""The bridge between PortalPay's entries and the NACHA format (domain/nacha, H23a's writer and
reader): what origination hands the writer, the read-back check, what ingest takes from a bank's
file, and the masked view of a file for `portalpay nacha show`."""

from dataclasses import dataclass
from datetime import date, datetime

from domain.nacha import fields as f
from domain.nacha.model import DebitEntry, NoticeOfChange, Problem, ReturnEntry
from domain.nacha.read_back import check_file
from domain.nacha.reader import read_file
from domain.nacha.writer import batches_by_effective_date, write_file
from infra.nacha_config import NachaConfig


@dataclass(frozen=True)
class OutgoingEntry:
    transaction_code: str
    routing_number: str
    account_number: str
    amount_cents: int
    individual_id: str
    individual_name: str
    trace_number: str


class FileCheckFailed(Exception):
    """A file we wrote does not read back clean: it is never stored or sent."""


def write_ach_file(
    config: NachaConfig, entries: list[OutgoingEntry], *, created_at: datetime, modifier: str, effective: date
) -> str:
    dated = [
        (
            effective,
            DebitEntry(
                transaction_code=e.transaction_code,
                rdfi_routing=e.routing_number,
                account_number=e.account_number,
                amount_cents=e.amount_cents,
                individual_id=e.individual_id,
                individual_name=e.individual_name,
                trace_number=e.trace_number,
            ),
        )
        for e in entries
    ]
    local = created_at.astimezone(config.cutoff_zone)
    return write_file(
        config.originator(), batches_by_effective_date(dated), created_at=local, file_id_modifier=modifier
    )


def check_written(text: str) -> None:
    problems = check_file(text)
    if problems:
        raise FileCheckFailed("; ".join(str(p) for p in problems[:5]))


@dataclass(frozen=True)
class InboundReturn:
    trace_number: str
    return_code: str


@dataclass(frozen=True)
class InboundNotice:
    trace_number: str
    change_code: str
    corrected_data: str


@dataclass(frozen=True)
class InboundProblem:
    line: int | None
    message: str


@dataclass(frozen=True)
class InboundFile:
    returns: list[InboundReturn]
    notices: list[InboundNotice]
    problems: list[InboundProblem]


def _return(r: ReturnEntry) -> InboundReturn:
    return InboundReturn(r.original_trace, r.return_code)


def _notice(n: NoticeOfChange) -> InboundNotice:
    return InboundNotice(n.original_trace, n.change_code, n.corrected_data)


def _problem(p: Problem) -> InboundProblem:
    return InboundProblem(p.line_number or None, p.message)


def read_inbound(text: str) -> InboundFile:
    """Lenient (the reader never raises): what could not be read comes back as problems by line."""
    result = read_file(text)
    return InboundFile(
        returns=[_return(r) for r in result.returns],
        notices=[_notice(n) for n in result.notices],
        problems=[_problem(p) for p in result.problems],
    )


def mask_account_numbers(text: str) -> str:
    """Each entry's account number cut to its last four: the file as staff may see it."""
    account = f.ENTRY_DETAIL.field("dfi_account_number")
    start, end = account.start, account.end
    out = []
    for line in text.splitlines():
        if line.startswith("6") and len(line) >= end:
            number = line[start - 1 : end].rstrip()
            masked = ("•" * max(len(number) - 4, 0) + number[-4:]).ljust(end - start + 1)
            line = line[: start - 1] + masked + line[end:]
        out.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")
