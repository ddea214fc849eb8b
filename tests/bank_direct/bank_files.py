"""Files as the bank sends them back (SPEC §13), built field by field for a test: one return
(addenda 99) or one notice of change (addenda 98) per entry. Like many banks' files they carry no
batch or file control records; the reader must take them anyway."""

from dataclasses import dataclass

HEADER = "101 091400606 6910001341810170306A094101FIRST BANK & TRUST     ASF APPLICATION SUPERVI        "
BATCH = "5200CoinLion                            123456789 WEBTRANSFER        000101   1091000010000001"


@dataclass(frozen=True)
class Answered:
    """The entry the bank answers about, as it left in our file."""

    trace_number: str
    routing_number: str
    account_number: str
    amount_cents: int
    individual_id: str = ""
    name: str = "CUSTOMER"
    transaction_code: str = "27"


def _entry(e: Answered, code: str, return_trace: str) -> str:
    line = (
        "6"
        + "26"
        + e.routing_number[:8]
        + e.routing_number[8]
        + e.account_number.ljust(17)
        + f"{e.amount_cents:010d}"
        + e.individual_id.ljust(15)[:15]
        + e.name.ljust(22)[:22]
        + "  "
        + "1"
        + return_trace
    )
    assert len(line) == 94, len(line)
    return line


def return_file(entries: list[tuple[Answered, str]]) -> str:
    lines = [HEADER, BATCH]
    for n, (entry, code) in enumerate(entries, start=1):
        trace = f"09100001{n:07d}"
        lines.append(_entry(entry, code, trace))
        addenda = "799" + code + entry.trace_number + " " * 6 + entry.routing_number[:8] + " " * 44 + trace
        assert len(addenda) == 94, len(addenda)
        lines.append(addenda)
    return "\n".join(lines) + "\n"


def notice_file(entry: Answered, code: str, corrected: str) -> str:
    trace = "091000010000099"
    addenda = (
        "798"
        + code
        + entry.trace_number
        + " " * 6
        + entry.routing_number[:8]
        + corrected.ljust(29)[:29]
        + " " * 15
        + trace
    )
    assert len(addenda) == 94, len(addenda)
    return "\n".join([HEADER, BATCH, _entry(entry, code, trace), addenda]) + "\n"
