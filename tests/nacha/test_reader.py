"""The lenient reader on files other tools and banks produce (../shared/fixtures/nacha, moov-io/ach)."""

import pytest

from domain.nacha.change_codes import CHANGE_CODES
from domain.nacha.model import ReadResult
from domain.nacha.reader import read_file
from tests.nacha.samples import FIXTURES

FILES = sorted(p.name for p in FIXTURES.glob("*.ach"))
CRASHERS = sorted(p.name for p in (FIXTURES / "crashers").iterdir())


def read(name: str) -> ReadResult:
    return read_file((FIXTURES / name).read_text(errors="replace"))


def test_the_fixtures_are_there() -> None:
    assert len(FILES) == 12 and len(CRASHERS) == 7


def test_web_returns_are_matched_by_their_original_trace() -> None:
    result = read("return-WEB.ach")
    assert result.problems == ()
    assert [(r.return_code, r.original_trace, r.amount_cents, r.line_number) for r in result.returns] == [
        ("R01", "091400600000001", 12354, 4),
        ("R03", "091400600000003", 4565, 8),
    ]
    assert [r.original_rdfi for r in result.returns] == ["09100001", "02100002"]
    assert result.entries == () and result.notices == ()


@pytest.mark.parametrize("name", ["cor-example.ach", "cor-read.ach"])
def test_a_c01_notice_carries_its_corrected_account_number(name: str) -> None:
    result = read(name)
    assert result.problems == () and result.returns == ()
    (notice,) = result.notices
    assert (notice.change_code, notice.original_trace, notice.corrected_data) == (
        "C01",
        "121042880000001",
        "1918171614",
    )
    assert notice.original_rdfi == "12104288" and notice.line_number == 4
    assert notice.corrected_data_masked == "••••••1614"
    assert CHANGE_CODES[notice.change_code].holds_account_number


def test_an_invalid_notice_is_refused_with_a_problem_not_a_crash() -> None:
    result = read("web-invalidNOCFile.ach")
    assert result.notices == () and result.returns == () and result.entries == ()
    (problem,) = result.problems
    assert problem.line_number == 4 and "C92" in problem.message


@pytest.mark.parametrize(
    ("name", "returns", "notices"),
    [
        ("return-no-batch-controls.ach", ["091400600000001"], ["121042880000001"]),
        ("return-no-batch-header.ach", ["091400600000001"], ["121042880000001"]),
        ("return-no-file-header-control.ach", ["091400600000001"], []),
    ],
)
def test_files_missing_headers_or_controls_are_still_read(
    name: str, returns: list[str], notices: list[str]
) -> None:
    result = read(name)
    assert result.problems == ()
    assert [r.original_trace for r in result.returns] == returns
    assert [r.return_code for r in result.returns] == ["R01"]
    assert [n.original_trace for n in result.notices] == notices


def test_a_return_without_a_batch_header_has_no_effective_date_but_is_matched() -> None:
    assert read("return-no-batch-header.ach").returns[0].original_trace == "091400600000001"


@pytest.mark.parametrize(
    ("name", "codes"),
    [
        ("dishonored-return.ach", ["R68", "R68"]),
        ("issue1620_return.ach", ["R03"]),
        ("contested-return.ach", ["R07"]),
    ],
)
def test_other_return_shapes(name: str, codes: list[str]) -> None:
    result = read(name)
    assert [r.return_code for r in result.returns] == codes
    assert all(len(r.original_trace) == 15 and r.original_trace.isdigit() for r in result.returns)


def test_a_contested_return_reports_the_extra_addenda_it_does_not_act_on() -> None:
    result = read("contested-return.ach")
    assert [p.line_number for p in result.problems] == [5, 6]


@pytest.mark.parametrize(
    ("name", "count", "total"), [("web-debit.ach", 6, 41820), ("ppd-debit.ach", 1, 100000000)]
)
def test_outbound_files_are_read_as_entries(name: str, count: int, total: int) -> None:
    result = read(name)
    assert result.problems == () and result.returns == () and result.notices == ()
    assert len(result.entries) == count and sum(e.amount_cents for e in result.entries) == total


def test_entries_carry_the_effective_date_of_their_batch() -> None:
    dates = {e.effective_date.isoformat() for e in read("web-debit.ach").entries if e.effective_date}
    assert dates == {"2015-03-05", "2015-03-16", "2015-03-06"}


@pytest.mark.parametrize("name", CRASHERS)
def test_each_crasher_is_reported_without_a_traceback(name: str) -> None:
    raw = (FIXTURES / "crashers" / name).read_bytes()
    for result in (read_file(raw), read_file(raw.decode("latin-1"))):
        assert result.problems, name
        assert all(p.line_number >= 1 and "Traceback" not in p.message for p in result.problems)
        assert not any("could not be read" in p.message for p in result.problems), (
            "a reader bug, caught by the last resort"
        )


def test_a_return_whose_entry_detail_is_unreadable_is_reported_with_its_code_and_trace() -> None:
    lines = (FIXTURES / "return-WEB.ach").read_text().split("\n")
    lines[2] = lines[2][:29] + "00000X2354" + lines[2][39:]  # the R01 entry's amount
    result = read_file("\n".join(lines))
    assert [r.return_code for r in result.returns] == ["R03"]
    assert [p.line_number for p in result.problems] == [3, 4]
    assert "R01" in result.problems[1].message and "091400600000001" in result.problems[1].message


def test_a_byte_order_mark_does_not_cost_the_file_header() -> None:
    text = (FIXTURES / "return-WEB.ach").read_text()
    assert read_file("\ufeff" + text) == read_file(text)
    assert read_file(("\ufeff" + text).encode()) == read_file(text)


def test_entries_read_back_show_only_the_last_four_of_an_account() -> None:
    (entry, *_) = read("web-debit.ach").entries
    assert entry.account_number_masked == "•••4567" and "123456" not in entry.account_number_masked
