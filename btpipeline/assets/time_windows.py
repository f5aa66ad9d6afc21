"""Turning a run's partition time window into the numbers the kernels use."""

import datetime as dt
from collections.abc import Iterator

from dagster import AssetExecutionContext, TimeWindow


def to_ns(moment: dt.datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime (partition windows are UTC-aware)."""
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000


def window_ns(context: AssetExecutionContext) -> tuple[int, int]:
    """[start, end) of the run's partition range, in epoch nanoseconds."""
    window: TimeWindow = context.partition_time_window
    return to_ns(window.start), to_ns(window.end)


def months_in(window: TimeWindow) -> Iterator[tuple[int, int]]:
    """(year, month) of every month the window touches."""
    year, month = window.start.year, window.start.month
    while dt.datetime(year, month, 1, tzinfo=dt.timezone.utc) < window.end:
        yield year, month
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
