"""Banking days and the bank's cut-off (SPEC §13): when a NACHA file can still go out today.

ACH moves on Federal Reserve business days: weekdays that are not one of the Fed's eleven
holidays. The Fed differs from the federal calendar in one way that matters here: a holiday that
falls on a Saturday is NOT observed on the Friday before (the Fed is open), while one that falls on
a Sunday is observed on the Monday after.
"""

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

JUNETEENTH_FIRST_YEAR = 2022  # the first year the Federal Reserve Banks closed for it


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th `weekday` (Monday 0) of the month; n = -1 for the last one."""
    days = [
        d
        for d in calendar.Calendar().itermonthdates(year, month)
        if d.month == month and d.weekday() == weekday
    ]
    return days[n] if n < 0 else days[n - 1]


def _observed(day: date) -> date | None:
    if day.weekday() == calendar.SUNDAY:
        return day + timedelta(days=1)
    if day.weekday() == calendar.SATURDAY:
        return None  # the Fed stays open on the Friday before
    return day


def federal_reserve_holidays(year: int) -> dict[date, str]:
    """The days the Federal Reserve Banks are closed in `year`, with the holiday's name."""
    return dict(_holidays(year))


@cache
def _holidays(year: int) -> tuple[tuple[date, str], ...]:
    fixed = [
        (date(year, 1, 1), "New Year's Day"),
        (date(year, 7, 4), "Independence Day"),
        (date(year, 11, 11), "Veterans Day"),
        (date(year, 12, 25), "Christmas Day"),
    ]
    if year >= JUNETEENTH_FIRST_YEAR:
        fixed.append((date(year, 6, 19), "Juneteenth National Independence Day"))
    holidays: dict[date, str] = {}
    for day, name in fixed:
        observed = _observed(day)
        if observed is not None:
            holidays[observed] = name
    monday, thursday = calendar.MONDAY, calendar.THURSDAY
    holidays[_nth_weekday(year, 1, monday, 3)] = "Birthday of Martin Luther King, Jr."
    holidays[_nth_weekday(year, 2, monday, 3)] = "Washington's Birthday"
    holidays[_nth_weekday(year, 5, monday, -1)] = "Memorial Day"
    holidays[_nth_weekday(year, 9, monday, 1)] = "Labor Day"
    holidays[_nth_weekday(year, 10, monday, 2)] = "Columbus Day"
    holidays[_nth_weekday(year, 11, thursday, 4)] = "Thanksgiving Day"
    return tuple(sorted(holidays.items()))


def is_banking_day(day: date) -> bool:
    return day.weekday() < calendar.SATURDAY and all(day != h for h, _ in _holidays(day.year))


def add_banking_days(day: date, count: int) -> date:
    """The date `count` banking days after `day` (before it when negative); `day` itself is not counted.

    `add_banking_days(d, 0)` is `d`, banking day or not.
    """
    step = 1 if count >= 0 else -1
    remaining = abs(count)
    while remaining:
        day += timedelta(days=step)
        if is_banking_day(day):
            remaining -= 1
    return day


def next_banking_day(day: date) -> date:
    """The first banking day strictly after `day`."""
    return add_banking_days(day, 1)


def banking_days_between(start: date, end: date) -> int:
    """How many banking days lie after `start` up to and including `end` (0 when end <= start)."""
    count = 0
    day = start
    while day < end:
        day += timedelta(days=1)
        if is_banking_day(day):
            count += 1
    return count


def next_cutoff(now: datetime, cutoff_time: time, tz: ZoneInfo) -> datetime:
    """The next cut-off instant strictly after `now`: `cutoff_time` on a banking day in `tz`.

    The wall-clock time is kept across daylight-saving changes (15:00 Chicago is 21:00 UTC in
    winter, 20:00 UTC in summer). `now` must be timezone-aware; the answer is in `tz`.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    day = now.astimezone(tz).date()
    while True:
        if is_banking_day(day):
            candidate = datetime.combine(day, cutoff_time, tzinfo=tz)
            if candidate > now:
                return candidate
        day += timedelta(days=1)


_CUTOFF = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])\s+(\S+)", re.ASCII)


@dataclass(frozen=True)
class Cutoff:
    """The bank's daily cut-off: a wall-clock time in the bank's time zone (NACHA_CUTOFF)."""

    at: time
    tz: ZoneInfo

    def next_after(self, now: datetime) -> datetime:
        return next_cutoff(now, self.at, self.tz)

    def __str__(self) -> str:
        return f"{self.at:%H:%M} {self.tz.key}"


def parse_cutoff(setting: str) -> Cutoff:
    """`15:00 America/Chicago` -> Cutoff; ValueError with one readable line otherwise."""
    match = _CUTOFF.fullmatch(setting.strip())
    if not match:
        raise ValueError(
            f"NACHA_CUTOFF must look like '15:00 America/Chicago' (HH:MM and an IANA time zone), got {setting!r}"
        )
    hours, minutes, zone = match.groups()
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"NACHA_CUTOFF: {zone!r} is not a known time zone (e.g. America/Chicago)") from exc
    return Cutoff(time(int(hours), int(minutes)), tz)
