"""File id modifiers and trace numbers: what makes each file and each entry unique at the bank.

A bank tells two files of the same day apart by the file id modifier (A-Z, then 0-9: 36 a day).
A trace number is the ODFI id and a 7-digit sequence; a trace is never reused, because returns
and notices of change come back matched by it alone.
"""

from collections.abc import Collection

FILE_ID_MODIFIERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
TRACE_SEQUENCE_MAX = 9_999_999


class FileIdsExhausted(ValueError):
    """All 36 modifiers of the day are used: a 37th file that day would be a duplicate to the bank."""


def next_file_id_modifier(used_today: Collection[str]) -> str:
    """The first modifier, in A-Z then 0-9 order, not used by a file created the same day."""
    for modifier in FILE_ID_MODIFIERS:
        if modifier not in used_today:
            return modifier
    raise FileIdsExhausted("all 36 file id modifiers (A-Z, 0-9) are used today")


def trace_number(odfi_id: str, sequence: int) -> str:
    """`odfi_id` (8 digits) + `sequence` (1..9,999,999) zero-padded to 7 digits."""
    if not (len(odfi_id) == 8 and odfi_id.isascii() and odfi_id.isdigit()):
        raise ValueError("the ODFI id is 8 digits")
    if not 1 <= sequence <= TRACE_SEQUENCE_MAX:
        raise ValueError(f"a trace sequence is 1..{TRACE_SEQUENCE_MAX}, got {sequence}")
    return f"{odfi_id}{sequence:07d}"


def trace_sequence(trace: str) -> int:
    """The 7-digit sequence of a trace number (its last 7 digits)."""
    if not (len(trace) == 15 and trace.isascii() and trace.isdigit()):
        raise ValueError("a trace number is 15 digits")
    return int(trace[8:])
