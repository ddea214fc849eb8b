"""Federal Reserve banking days 2026-2028 and the bank's cut-off across daylight-saving changes."""

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from domain.banking_days import (
    add_banking_days,
    banking_days_between,
    federal_reserve_holidays,
    is_banking_day,
    next_banking_day,
    next_cutoff,
    parse_cutoff,
)

CHICAGO = ZoneInfo("America/Chicago")

# The Federal Reserve's published holiday schedule for 2026-2028.
PUBLISHED = {
    2026: [
        "2026-01-01",
        "2026-01-19",
        "2026-02-16",
        "2026-05-25",
        "2026-06-19",
        "2026-09-07",
        "2026-10-12",
        "2026-11-11",
        "2026-11-26",
        "2026-12-25",
    ],
    2027: [
        "2027-01-01",
        "2027-01-18",
        "2027-02-15",
        "2027-05-31",
        "2027-07-05",
        "2027-09-06",
        "2027-10-11",
        "2027-11-11",
        "2027-11-25",
    ],
    2028: [
        "2028-01-17",
        "2028-02-21",
        "2028-05-29",
        "2028-06-19",
        "2028-07-04",
        "2028-09-04",
        "2028-10-09",
        "2028-11-23",
        "2028-12-25",
    ],
}


@pytest.mark.parametrize("year", sorted(PUBLISHED))
def test_the_holidays_match_the_published_schedule(year: int) -> None:
    assert [d.isoformat() for d in federal_reserve_holidays(year)] == PUBLISHED[year]
    assert all(not is_banking_day(date.fromisoformat(d)) for d in PUBLISHED[year])


@pytest.mark.parametrize(
    ("saturday", "friday_before"),
    [
        ("2026-07-04", "2026-07-03"),
        ("2027-06-19", "2027-06-18"),
        ("2027-12-25", "2027-12-24"),
        ("2028-01-01", "2027-12-31"),
        ("2028-11-11", "2028-11-10"),
    ],
)
def test_a_saturday_holiday_leaves_the_friday_before_a_banking_day(saturday: str, friday_before: str) -> None:
    assert date.fromisoformat(saturday).weekday() == 5
    assert is_banking_day(date.fromisoformat(friday_before))


def test_a_sunday_holiday_is_observed_on_monday() -> None:
    assert date(2027, 7, 4).weekday() == 6
    assert not is_banking_day(date(2027, 7, 5)) and is_banking_day(date(2027, 7, 6))


def test_adding_banking_days_skips_weekends_and_holidays() -> None:
    assert add_banking_days(date(2026, 11, 25), 1) == date(2026, 11, 27)  # over Thanksgiving
    assert add_banking_days(date(2026, 12, 24), 1) == date(2026, 12, 28)  # Christmas Friday, weekend
    assert add_banking_days(date(2026, 12, 31), 1) == date(2027, 1, 4)  # New Year's Friday, weekend
    assert add_banking_days(date(2027, 1, 4), -1) == date(2026, 12, 31)
    assert add_banking_days(date(2026, 12, 26), 0) == date(2026, 12, 26)
    assert add_banking_days(date(2026, 12, 7), 3) == date(2026, 12, 10)
    assert next_banking_day(date(2026, 12, 31)) == date(2027, 1, 4)
    assert banking_days_between(date(2026, 12, 24), date(2027, 1, 4)) == 5  # 28-31 Dec and 4 Jan
    assert banking_days_between(date(2026, 12, 24), date(2026, 12, 24)) == 0


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_the_cutoff_is_the_same_wall_clock_time_across_dst() -> None:
    cutoff = time(15, 0)
    # Winter: 15:00 CST is 21:00 UTC.
    assert next_cutoff(utc(2026, 3, 5, 20, 59), cutoff, CHICAGO) == utc(2026, 3, 5, 21, 0)
    # Friday after the cut-off, DST starts on Sunday 8 March: Monday's 15:00 CDT is 20:00 UTC.
    assert next_cutoff(utc(2026, 3, 6, 21, 0), cutoff, CHICAGO) == utc(2026, 3, 9, 20, 0)
    # Autumn: DST ends on Sunday 1 November 2026; Friday 30 October is still CDT.
    assert next_cutoff(utc(2026, 10, 30, 19, 0), cutoff, CHICAGO) == utc(2026, 10, 30, 20, 0)
    assert next_cutoff(utc(2026, 10, 30, 20, 0), cutoff, CHICAGO) == utc(2026, 11, 2, 21, 0)


def test_the_cutoff_skips_holidays_and_uses_the_bank_day_not_the_utc_day() -> None:
    # 03:00 UTC Friday 27 Nov is still Thursday (Thanksgiving) evening in Chicago.
    assert next_cutoff(utc(2026, 11, 26, 12, 0), time(15, 0), CHICAGO) == utc(2026, 11, 27, 21, 0)
    assert next_cutoff(utc(2026, 11, 27, 3, 0), time(15, 0), CHICAGO) == utc(2026, 11, 27, 21, 0)
    # 23:30 Chicago on a Monday is 05:30 UTC Tuesday; the cut-off of 23:45 is still Monday's.
    assert next_cutoff(utc(2026, 12, 8, 5, 30), time(23, 45), CHICAGO) == utc(2026, 12, 8, 5, 45)


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError):
        next_cutoff(datetime(2026, 12, 7, 12, 0), time(15, 0), CHICAGO)


def test_parse_cutoff() -> None:
    cutoff = parse_cutoff("15:00 America/Chicago")
    assert (cutoff.at, cutoff.tz.key, str(cutoff)) == (
        time(15, 0),
        "America/Chicago",
        "15:00 America/Chicago",
    )
    assert parse_cutoff(" 9:30  America/New_York ").at == time(9, 30)
    assert cutoff.next_after(utc(2026, 12, 7, 12, 0)) == utc(2026, 12, 7, 21, 0)
    for bad in (
        "15:00",
        "25:00 America/Chicago",
        "15:00 Mars/Olympus",
        "3pm America/Chicago",
        "",
        "15:00 ../etc/passwd",
    ):
        with pytest.raises(ValueError, match="NACHA_CUTOFF"):
            parse_cutoff(bad)
