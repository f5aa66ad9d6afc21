"""Turning a run's partition time window into the numbers the kernels use."""

import datetime as dt
from collections.abc import Iterator

from dagster import AssetExecutionContext, TimeWindow

from btpipeline.errors import InvalidDateRangeError


def to_ns(moment: dt.datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime (partition windows are UTC-aware)."""
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000


def window_ns(context: AssetExecutionContext) -> tuple[int, int]:
    """[start, end) of the run's partition range, in epoch nanoseconds."""
    window: TimeWindow = context.partition_time_window
    if window.end <= window.start:
        raise reversed_range_error(context)
    return to_ns(window.start), to_ns(window.end)


def reversed_range_error(context: AssetExecutionContext) -> InvalidDateRangeError:
    """Dagster launches a reversed ``--partition-range`` (newer month first) as a run; its
    steps then fail here at once, before reading any candle, with the range the right way."""
    keys = context.partition_key_range
    return InvalidDateRangeError(
        f"The run's partition range {keys.start}...{keys.end} is reversed: it starts at "
        f"{keys.start} and ends at the earlier {keys.end}, so it holds no month. Fix: give the "
        f"older month first, e.g. `dagster asset materialize ... --partition-range "
        f"{keys.end}...{keys.start}` (in the UI: [{keys.end}...{keys.start}]).")


def months_in(window: TimeWindow) -> Iterator[tuple[int, int]]:
    """(year, month) of every month the window touches."""
    year, month = window.start.year, window.start.month
    while dt.datetime(year, month, 1, tzinfo=dt.timezone.utc) < window.end:
        yield year, month
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
