"""The NACHA writer: golden files, an independent validator (achkit), the read-back check, and values
that are cut or refused without ever shifting a column."""

import dataclasses
from collections.abc import Callable
from datetime import date
from typing import Any

import achkit
import pytest

from domain.nacha import fields as f
from domain.nacha.model import SAVINGS_DEBIT, SAVINGS_PRENOTE, Batch
from domain.nacha.reader import check_file, read_file
from domain.nacha.writer import entry_problem, originator_problems, write_file
from tests.nacha.samples import (
    CHASE,
    CREATED_AT,
    EFFECTIVE,
    FED_BOSTON,
    GOLDEN,
    ORIGINATOR,
    WELLS,
    debit,
    one_batch,
    prenote,
)


def assert_valid(text: str) -> None:
    """What every file the writer produces must pass: our strict read-back and achkit's validator."""
    assert check_file(text) == []
    report = achkit.validate(text)
    assert report["ok"], report["errors"]
    assert all(len(line) == f.RECORD_LENGTH for line in text.split("\n")[:-1])


def _fullwidth(text: str) -> str:
    """The same letters and digits from the fullwidth block (U+FF01..), which `isdigit()` accepts."""
    return "".join(chr(ord(ch) + 0xFEE0) if ch != " " else "\u3000" for ch in text)


def debit_file() -> str:
    batches = [
        Batch(
            EFFECTIVE,
            (
                debit(3, routing=WELLS, cents=250_00, name="José Núñez-García"),
                debit(1, routing=CHASE, cents=1_234_56, name="Jane Payer"),
            ),
        ),
        Batch(
            date(2026, 12, 9),
            (debit(2, routing=FED_BOSTON, cents=99, code=SAVINGS_DEBIT, name="Zoë Æsir Straße"),),
        ),
    ]
    return write_file(ORIGINATOR, batches, created_at=CREATED_AT, file_id_modifier="A")


def prenote_file() -> str:
    batches = one_batch(
        prenote(7, routing=WELLS, name="Bob Builder"), prenote(8, code=SAVINGS_PRENOTE, name="Ann Saver")
    )
    return write_file(ORIGINATOR, batches, created_at=CREATED_AT, file_id_modifier="B")


@pytest.mark.parametrize(("name", "build"), [("debit.ach", debit_file), ("prenote.ach", prenote_file)])
def test_the_writer_produces_the_golden_file_byte_for_byte(name: str, build: Callable[[], str]) -> None:
    text = build()
    assert text == (GOLDEN / name).read_text()
    assert_valid(text)


@pytest.mark.parametrize("name", ["debit.ach", "prenote.ach"])
def test_the_golden_files_pass_both_validators(name: str) -> None:
    assert_valid((GOLDEN / name).read_text())


def test_the_debit_file_layout() -> None:
    lines = debit_file().split("\n")[:-1]
    kinds = "".join(line[0] for line in lines)
    assert kinds == "1566856899"  # header, two batches, control, padding to ten
    assert lines[1][50:53] == "WEB" and lines[1][1:4] == "225"
    first_batch = [line for line in lines if line[0] == "6"][:2]
    assert [line[79:94] for line in first_batch] == ["231380100000001", "231380100000003"]  # ascending traces
    assert all(line[76:78] == "S " for line in lines if line[0] == "6")
    assert "JOSE NUNEZ-GARCIA" in lines[3] and "ZOE AESIR STRASSE" in lines[6]


def test_prenotes_are_zero_dollar_entries_with_codes_28_and_38() -> None:
    entries = read_file(prenote_file()).entries
    assert [(e.transaction_code, e.amount_cents) for e in entries] == [("28", 0), ("38", 0)]


def test_every_layout_covers_94_columns_without_gap_or_overlap() -> None:
    for layout in f.LAYOUTS:
        column = 1
        for field_ in layout.fields:
            assert field_.start == column, (layout.name, field_.name)
            column = field_.end + 1
        assert column == f.RECORD_LENGTH + 1, layout.name


def _tamper(text: str, kind: str, field_name: str, value: str, layout: f.RecordLayout) -> str:
    lines = text.split("\n")
    index = next(i for i, line in enumerate(lines) if line[:1] == kind)
    spot = layout.field(field_name)
    assert len(value) == spot.length and lines[index][spot.start - 1 : spot.end] != value
    lines[index] = lines[index][: spot.start - 1] + value + lines[index][spot.end :]
    return "\n".join(lines)


TAMPERINGS = {
    "batch entry hash": ("8", "entry_hash", "0000000001", f.BATCH_CONTROL, "BAD_ENTRY_HASH"),
    "file entry hash": ("9", "entry_hash", "0000000001", f.FILE_CONTROL, "BAD_FILE_HASH"),
    "batch debit total": (
        "8",
        "total_debit_entry_dollar_amount",
        "000000000001",
        f.BATCH_CONTROL,
        "BAD_BATCH_DEBIT",
    ),
    "file debit total": (
        "9",
        "total_debit_entry_dollar_amount",
        "000000000001",
        f.FILE_CONTROL,
        "BAD_FILE_DEBIT",
    ),
    "batch entry count": ("8", "entry_addenda_count", "000009", f.BATCH_CONTROL, "BAD_BATCH_COUNT"),
    "file entry count": ("9", "entry_addenda_count", "00000009", f.FILE_CONTROL, "BAD_FILE_COUNT"),
    "block count": ("9", "block_count", "000002", f.FILE_CONTROL, "BAD_BLOCK_COUNT"),
    "entry amount": ("6", "amount", "0000000001", f.ENTRY_DETAIL, "BAD_BATCH_DEBIT"),
}


@pytest.mark.parametrize("what", sorted(TAMPERINGS))
def test_a_tampered_control_fails_both_validators(what: str) -> None:
    kind, field_name, value, layout, achkit_code = TAMPERINGS[what]
    tampered = _tamper(debit_file(), kind, field_name, value, layout)
    assert check_file(tampered), what
    codes = {e["code"] for e in achkit.validate(tampered)["errors"]}
    assert achkit_code in codes, codes


@pytest.mark.parametrize(
    "how", ["one padding record dropped", "one padding record added", "padding not nines"]
)
def test_tampered_padding_fails_both_validators(how: str) -> None:
    lines = debit_file().split("\n")[:-1]
    if how == "one padding record dropped":
        lines.pop()
    elif how == "one padding record added":
        lines.append(f.PADDING_RECORD)
    else:
        lines[-1] = "9" * 93 + " "
    tampered = "".join(line + "\n" for line in lines)
    assert check_file(tampered), how
    if how != "padding not nines":  # achkit only counts records; it does not read the filler
        assert not achkit.validate(tampered)["ok"]


def test_check_file_names_the_line_of_a_broken_record() -> None:
    lines = debit_file().split("\n")
    lines[2] = lines[2][:50]
    problems = check_file("\n".join(lines))
    assert [p.line_number for p in problems] == [3]


@pytest.mark.parametrize(
    ("name", "cut_to"),
    [
        ("Maximilian Alexander von Habsburg-Lothringen", "MAXIMILIAN ALEXANDER V"),
        ("Ærøskøbing Ølstue ApS", "AEROSKOBING OLSTUE APS"),
        ("李小龍 Bruce Lee", "BRUCE LEE"),
        ("Ĳsselmeer\tB.V.\u200b\u202e", "IJSSELMEER B.V."),
        (_fullwidth("Fullwidth Name"), "FULLWIDTH NAME"),
    ],
)
def test_names_are_made_ascii_and_cut_never_shifting_a_column(name: str, cut_to: str) -> None:
    text = write_file(ORIGINATOR, one_batch(debit(1, name=name)), created_at=CREATED_AT, file_id_modifier="A")
    assert_valid(text)
    assert read_file(text).entries[0].individual_name == cut_to


def test_over_long_originator_names_are_cut_to_their_fields() -> None:
    long = dataclasses.replace(
        ORIGINATOR,
        destination_name="D" * 40,
        origin_name="Ö" * 40,
        company_name="C" * 30,
        entry_description="E" * 20,
    )
    text = write_file(long, one_batch(debit(1)), created_at=CREATED_AT, file_id_modifier="A")
    assert_valid(text)
    header, batch_header = text.split("\n")[:2]
    assert header[40:63] == "D" * 23 and header[63:86] == "O" * 23
    assert batch_header[4:20] == "C" * 16 and batch_header[53:63] == "E" * 10
    # ... but the start-up check tells the operator the setting is too long.
    assert any("NACHA_COMPANY_NAME" in p for p in originator_problems(long))


REFUSED_ENTRIES: dict[str, dict[str, Any]] = {
    "routing check digit": {"rdfi_routing": "021000022"},
    "routing too long": {"rdfi_routing": "0210000210"},
    "routing in fullwidth digits": {"rdfi_routing": _fullwidth("021000021")},
    "account too long": {"account_number": "1" * 18},
    "account not ascii": {"account_number": "12345" + _fullwidth("6")},
    "account empty": {"account_number": ""},
    "individual id too long": {"individual_id": "P" * 16},
    "individual id not ascii": {"individual_id": "PAYÉ1"},
    "trace too short": {"trace_number": "23138010000001"},
    "trace of another ODFI": {"trace_number": "021000020000001"},
    "amount over 10 digits": {"amount_cents": 10_000_000_000},
    "negative amount": {"amount_cents": -5},
    "zero-dollar debit": {"amount_cents": 0},
    "amount not an int": {"amount_cents": 12.5},
    "prenote with money": {"transaction_code": "28", "amount_cents": 100},
    "credit code": {"transaction_code": "22"},
    "name with no ASCII letter": {"individual_name": "\u674e\u5c0f\u9f8d"},
}


@pytest.mark.parametrize("what", sorted(REFUSED_ENTRIES))
def test_identifying_values_are_refused_not_cut(what: str) -> None:
    entry = dataclasses.replace(debit(1), **REFUSED_ENTRIES[what])
    with pytest.raises(ValueError) as raised:
        write_file(ORIGINATOR, one_batch(entry), created_at=CREATED_AT, file_id_modifier="A")
    assert "000123456789" not in str(raised.value)  # an account number never appears in a message
    assert entry_problem(entry, ORIGINATOR.odfi_id) == str(raised.value)
    assert entry_problem(debit(1), ORIGINATOR.odfi_id) is None


REFUSED_FILES = {
    "bank routing check digit": (dataclasses.replace(ORIGINATOR, immediate_destination="231380105"), "A"),
    "immediate origin 11 chars": (dataclasses.replace(ORIGINATOR, immediate_origin="12345678901"), "A"),
    "company id 9 chars": (dataclasses.replace(ORIGINATOR, company_id="123456789"), "A"),
    "odfi 9 digits": (dataclasses.replace(ORIGINATOR, odfi_id="231380104"), "A"),
    "lower-case modifier": (ORIGINATOR, "a"),
    "two-character modifier": (ORIGINATOR, "AB"),
}


@pytest.mark.parametrize("what", sorted(REFUSED_FILES))
def test_bad_originator_settings_are_refused(what: str) -> None:
    originator, modifier = REFUSED_FILES[what]
    with pytest.raises(ValueError):
        write_file(originator, one_batch(debit(1)), created_at=CREATED_AT, file_id_modifier=modifier)


def test_a_file_with_nothing_to_send_or_a_repeated_trace_is_refused() -> None:
    for batches in (
        [],
        [Batch(EFFECTIVE, ())],
        one_batch(debit(1), debit(1, routing=WELLS)),
        [Batch(EFFECTIVE, (debit(1),)), Batch(EFFECTIVE, (debit(2),))],
    ):
        with pytest.raises(ValueError):
            write_file(ORIGINATOR, batches, created_at=CREATED_AT, file_id_modifier="A")


def test_the_sample_originator_has_no_problems() -> None:
    assert originator_problems(ORIGINATOR) == []


def test_a_full_block_needs_no_padding_and_the_next_record_opens_a_second_block() -> None:
    # header + batch header + 6 entries + batch control + file control = 10 records exactly.
    exact = write_file(
        ORIGINATOR, one_batch(*(debit(i) for i in range(1, 7))), created_at=CREATED_AT, file_id_modifier="A"
    )
    assert len(exact.split("\n")) - 1 == 10 and f.PADDING_RECORD not in exact
    assert_valid(exact)
    over = write_file(
        ORIGINATOR, one_batch(*(debit(i) for i in range(1, 8))), created_at=CREATED_AT, file_id_modifier="A"
    )
    assert len(over.split("\n")) - 1 == 20
    assert_valid(over)
