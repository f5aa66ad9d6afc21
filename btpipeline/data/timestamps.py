"""Conversions between int64 epoch nanoseconds (UTC), calendar months and readable text."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

NS_PER_MINUTE = 60 * 1_000_000_000
NS_PER_DAY = 1440 * NS_PER_MINUTE
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def iso_utc(ns: int) -> str:
    """``2024-01-02T17:00:00Z`` for epoch nanoseconds (sub-second digits only when present)."""
    seconds, rest = divmod(int(ns), 1_000_000_000)
    text = (_EPOCH + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{rest:09d}Z" if rest else f"{text}Z"


def date_ns(day: dt.date) -> int:
    """Epoch nanoseconds of midnight UTC starting ``day``."""
    return (day - _EPOCH.date()).days * NS_PER_DAY


def month_start_ns(year: int, month: int) -> int:
    return date_ns(dt.date(year, month, 1))


def next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def previous_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def month_bounds_ns(year: int, month: int) -> tuple[int, int]:
    """[start, end) of the UTC calendar month in epoch nanoseconds."""
    return month_start_ns(year, month), month_start_ns(*next_month(year, month))


def month_of_ns(ns: int) -> tuple[int, int]:
    day = _EPOCH.date() + dt.timedelta(days=int(ns) // NS_PER_DAY)
    return day.year, day.month


def months_between(first: tuple[int, int], last: tuple[int, int]) -> Iterator[tuple[int, int]]:
    """Every (year, month) from ``first`` to ``last`` inclusive."""
    current = first
    while current <= last:
        yield current
        current = next_month(*current)


def month_name(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"
