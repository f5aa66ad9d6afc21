"""The OHLC rules every candle set must satisfy before it is stored or used.

Each rule is a vectorised mask; the error reports the FIRST offending bar across all rules so
that fixing the file top to bottom converges. Gaps between bars (weekends, holidays, missing
minutes) are data, not errors.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from btpipeline.data.candles import FIELDS, Candles
from btpipeline.data.schema import PRICE_FIELDS
from btpipeline.data.timestamps import iso_utc
from btpipeline.errors import DataValidationError

_FIX_LINE = ("correct or delete that row (for a CSV file, the row is its line number) and "
             "import the file again")

# A rule: (mask of offending bars, describe(index) -> problem text, fix).
_Rule = tuple[np.ndarray, Callable[[int], str], str]


def _first(mask: np.ndarray) -> int | None:
    """Index of the first True in ``mask`` (argmax stops at the first hit), or None."""
    if mask.size == 0:
        return None
    index = int(mask.argmax())
    return index if mask[index] else None


def _timestamp_rules(c: Candles) -> list[_Rule]:
    step = np.diff(c.timestamp)
    # step[i] compares bar i+1 with bar i: the later bar is the offending one.
    duplicate = np.concatenate(([False], step == 0))
    backwards = np.concatenate(([False], step < 0))
    ts = c.timestamp
    return [
        (duplicate, lambda i: f"duplicate timestamp {iso_utc(ts[i])} (same as the previous bar)",
         "keep one bar per timestamp: delete the duplicate row and import again"),
        (backwards, lambda i: f"timestamp {iso_utc(ts[i])} is earlier than the previous bar's "
                              f"{iso_utc(ts[i - 1])} (bars must be in increasing time order)",
         "sort the rows by time (and drop out-of-place rows), then import again"),
    ]


def _price_message(name: str, values: np.ndarray, i: int) -> str:
    return f"{name} price is {float(values[i])!r} (must be a positive finite number)"


def _price_rules(c: Candles) -> list[_Rule]:
    rules: list[_Rule] = []
    for name in PRICE_FIELDS:
        values = getattr(c, name)
        bad = ~(values > 0) | ~np.isfinite(values)  # NaN compares False, so ~(> 0) catches it
        rules.append((bad, functools.partial(_price_message, name, values), _FIX_LINE))
    body_high = np.fmax(c.open, c.close)
    body_low = np.fmin(c.open, c.close)
    rules.append((c.high < body_high, lambda i: f"high {float(c.high[i])!r} is below "
                  f"max(open, close) {float(body_high[i])!r}", _FIX_LINE))
    rules.append((c.low > body_low, lambda i: f"low {float(c.low[i])!r} is above "
                  f"min(open, close) {float(body_low[i])!r}", _FIX_LINE))
    volume_bad = ~(c.volume >= 0)
    rules.append((volume_bad, lambda i: f"volume is {float(c.volume[i])!r} (must be >= 0)",
                  _FIX_LINE))
    return rules


def _check_shape(candles: Candles, source: str) -> None:
    lengths = {name: getattr(candles, name).shape for name in FIELDS}
    if len(set(lengths.values())) != 1 or len(lengths["timestamp"]) != 1:
        raise DataValidationError(source, None, f"columns have different shapes {lengths}",
                                  "build Candles from 1-D arrays of equal length")
    if candles.timestamp.dtype != np.int64:
        raise DataValidationError(source, None, f"timestamp dtype is {candles.timestamp.dtype}, "
                                  "expected int64 epoch nanoseconds",
                                  "convert timestamps to int64 nanoseconds since the epoch, UTC")


def validate_candles(candles: Candles, *, source: str,
                     row_numbers: np.ndarray | None = None) -> None:
    """Raise ``DataValidationError`` at the first bar that breaks an OHLC rule.

    ``row_numbers[i]`` is the row reported for bar ``i`` (a CSV line number); without it the
    0-based bar index is reported. Rules: strictly increasing timestamps (no duplicates),
    positive finite prices, ``high >= max(open, close)``, ``low <= min(open, close)``,
    non-negative volume.
    """
    _check_shape(candles, source)
    worst: tuple[int, Callable[[int], str], str] | None = None
    for mask, describe, fix in _timestamp_rules(candles) + _price_rules(candles):
        index = _first(mask)
        if index is not None and (worst is None or index < worst[0]):
            worst = (index, describe, fix)
    if worst is None:
        return
    index, describe, fix = worst
    row = int(row_numbers[index]) if row_numbers is not None else index
    raise DataValidationError(source, row, describe(index), fix)
