"""check_file, the strict read-back of a file we wrote: each way a file can be broken is named."""

from collections.abc import Callable

import pytest

from domain.nacha import fields as f
from domain.nacha.reader import check_file
from domain.nacha.writer import write_file
from tests.nacha.samples import CHASE, CREATED_AT, ORIGINATOR, WELLS, debit, one_batch


def _written() -> list[str]:
    text = write_file(
        ORIGINATOR,
        one_batch(debit(1, routing=CHASE), debit(2, routing=WELLS)),
        created_at=CREATED_AT,
        file_id_modifier="A",
    )
    return text.split("\n")[:-1]  # header, batch header, 2 entries, batch control, file control, 4 padding


def _swap_entries(lines: list[str]) -> None:
    lines[2], lines[3] = lines[3], lines[2]


def _drop_batch_control(lines: list[str]) -> None:
    del lines[4]
    lines.append(f.PADDING_RECORD)


def _entry_before_batch(lines: list[str]) -> None:
    lines[1], lines[2] = lines[2], lines[1]


def _no_file_header(lines: list[str]) -> None:
    lines[0] = f.PADDING_RECORD


def _wrong_check_digit(lines: list[str]) -> None:
    lines[2] = lines[2][:11] + "2" + lines[2][12:]


def _credit_code(lines: list[str]) -> None:
    lines[2] = "622" + lines[2][3:]


def _batch_number(lines: list[str]) -> None:
    lines[4] = lines[4][:87] + "0000002"


def _record_after_control(lines: list[str]) -> None:
    lines[6] = lines[2]


BREAKAGES: dict[str, Callable[[list[str]], None]] = {
    "traces out of order": _swap_entries,
    "batch control missing": _drop_batch_control,
    "entry before its batch header": _entry_before_batch,
    "no file header": _no_file_header,
    "wrong RDFI check digit": _wrong_check_digit,
    "a credit": _credit_code,
    "batch control number differs": _batch_number,
    "an entry after the file control": _record_after_control,
}


@pytest.mark.parametrize("what", sorted(BREAKAGES))
def test_a_broken_structure_is_named_with_its_line(what: str) -> None:
    lines = _written()
    assert check_file("".join(line + "\n" for line in lines)) == []
    BREAKAGES[what](lines)
    problems = check_file("".join(line + "\n" for line in lines))
    assert problems, what
    assert all(str(p) for p in problems)


@pytest.mark.parametrize(
    ("what", "text"),
    [
        ("CRLF line ends", lambda t: t.replace("\n", "\r\n")),
        ("no final line break", lambda t: t[:-1]),
        ("a non-ASCII letter", lambda t: t.replace("JANE PAYER", "JANÉ PAYER")),
        ("a tab", lambda t: t.replace("JANE PAYER", "JANE\tPAYER")),
    ],
)
def test_bytes_that_are_not_ours_are_named(what: str, text: Callable[[str], str]) -> None:
    original = "".join(line + "\n" for line in _written())
    assert check_file(text(original)), what
