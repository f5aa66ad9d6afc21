"""Bar timeframes and resampling the stored 1-minute candles into them.

Convention (the README's "Timeframes" says it for users): a bar is labelled by its **open
time, in UTC**, and covers ``[label, label + length)``. Bars are aligned to UTC midnight:
M5 bars open at :00, :05, ...; H4 bars at 00:00, 04:00, ... 20:00 UTC; a D1 bar is a UTC
calendar day. So every bar lies inside one month and a monthly partition holds whole bars.
The forex week opens on Sunday 22:00 UTC: its first two hours form a short D1 bar (and a
short H4 bar 20:00-24:00) labelled Sunday; for metrics that stub belongs to Monday's trading
day (strategies/metrics.py). A bar is open = first 1-minute open, high = max, low = min,
close = last close, volume = sum; intervals without any 1-minute bar produce no bar. This is
``pandas.DataFrame.resample(length, label="left", closed="left")`` with the OHLCV
aggregations and empty bins dropped (a test checks it on the same data).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from btpipeline.data.candles import Candles
from btpipeline.errors import InvalidParameterError

Timeframe = Literal["M1", "M5", "M15", "M30", "H1", "H4", "D1"]
TIMEFRAME_MINUTES: dict[str, int] = {"M1": 1, "M5": 5, "M15": 15, "M30": 30, "H1": 60,
                                     "H4": 240, "D1": 1440}
NS_PER_MINUTE = 60 * 1_000_000_000


def timeframe_minutes(timeframe: str) -> int:
    try:
        return TIMEFRAME_MINUTES[timeframe]
    except KeyError:
        raise InvalidParameterError(
            f"Unknown timeframe {timeframe!r}: expected one of {', '.join(TIMEFRAME_MINUTES)}. "
            "Fix: pass one of those.") from None


def source_bars(bars: int, timeframe: str, stored: str = "M1") -> int:
    """Stored bars (of timeframe ``stored``) to read for ``bars`` bars of ``timeframe``: at
    most that many make one bar, so this never reads too few."""
    return int(bars) * (timeframe_minutes(timeframe) // timeframe_minutes(stored))


def check_derivable(timeframe: str, stored: str, epic: str) -> None:
    """``timeframe`` bars can be built from ``stored`` ones: equal, or a whole multiple."""
    want, have = timeframe_minutes(timeframe), timeframe_minutes(stored)
    if want < have or want % have:
        raise InvalidParameterError(
            f"Cannot run on {timeframe} bars: the {epic} data is stored at {stored}, and "
            f"{timeframe} bars are not whole groups of {stored} bars. Fix: run at {stored} or "
            f"a longer timeframe, or import {epic} data at {timeframe} or finer.")


def misaligned_row(timestamps: np.ndarray, timeframe: str) -> int | None:
    """The first row whose timestamp is not a ``timeframe`` bar's open time, or None."""
    stamps = np.asarray(timestamps, dtype=np.int64)
    bad = np.flatnonzero(bar_labels(stamps, timeframe) != stamps)
    return int(bad[0]) if bad.size else None


def bar_labels(timestamps: np.ndarray, timeframe: str) -> np.ndarray:
    """The open time of the ``timeframe`` bar each timestamp falls in (ns, UTC)."""
    length = timeframe_minutes(timeframe) * NS_PER_MINUTE
    stamps = np.asarray(timestamps, dtype=np.int64)
    return stamps - np.mod(stamps, length)


def resample(candles: Candles, timeframe: str) -> Candles:
    """``candles`` (1-minute) as bars of ``timeframe``; M1 returns them unchanged."""
    if timeframe_minutes(timeframe) == 1 or len(candles) == 0:
        return candles
    label = bar_labels(candles.timestamp, timeframe)
    starts = np.concatenate([[0], np.flatnonzero(np.diff(label)) + 1])
    ends = np.append(starts[1:], len(candles)) - 1
    return Candles(
        label[starts],
        np.asarray(candles.open, dtype=np.float64)[starts],
        np.maximum.reduceat(np.asarray(candles.high, dtype=np.float64), starts),
        np.minimum.reduceat(np.asarray(candles.low, dtype=np.float64), starts),
        np.asarray(candles.close, dtype=np.float64)[ends],
        np.add.reduceat(np.asarray(candles.volume, dtype=np.float64), starts),
    )


def closed_bars(candles: Candles, timeframe: str, now_ns: int | None = None) -> Candles:
    """The ``timeframe`` bars of ``candles`` (closed 1-minute bars) that have closed by
    ``now_ns``: an unfinished last bar is dropped, so a live evaluation never sees one.
    ``now_ns`` defaults to the close of the newest 1-minute bar; pass the clock to close an
    hour whose last minutes had no trade."""
    bars = resample(candles, timeframe)
    if len(bars) == 0:
        return bars
    if now_ns is None:
        now_ns = int(candles.timestamp[-1]) + NS_PER_MINUTE
    length = timeframe_minutes(timeframe) * NS_PER_MINUTE
    finished = int(np.searchsorted(bars.timestamp, int(now_ns) - length, side="right"))
    return bars.take(slice(0, finished))
