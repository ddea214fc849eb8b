"""The bank's days (SPEC §13), from domain/banking_days.py (Federal Reserve holidays): which day a
file is for, the effective date of its entries, and when quiet days have passed."""

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from domain.banking_days import add_banking_days, is_banking_day, next_banking_day

__all__ = ["add_banking_days", "at_cutoff", "bank_today", "effective_date", "next_file_day"]


def bank_today(now: datetime, zone: ZoneInfo) -> date:
    return now.astimezone(zone).date()


def next_file_day(now: datetime, cutoff: time, zone: ZoneInfo) -> date:
    """The banking day a file made now is processed on: today before its cut-off, else the next."""
    local = now.astimezone(zone)
    today = local.date()
    if is_banking_day(today) and local.time() < cutoff:
        return today
    return next_banking_day(today)


def effective_date(file_day: date) -> date:
    """Debits settle the banking day after the bank processes the file."""
    return next_banking_day(file_day)


def at_cutoff(day: date, cutoff: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, cutoff, tzinfo=zone)
