"""Gaps in the stored data: where a strategy's state restarts.

A hole in the data longer than ``max_gap`` (default 72 hours: a weekend, Friday 22:00 to
Sunday 22:00 UTC, is 48 hours, and a holiday Monday or Friday makes it 72) is not a market
that was closed for a moment but data that is missing, possibly for years. Nothing carries
across it:

* indicators are computed afresh from the first bar after the gap (each stretch of data
  between gaps is given to the strategy on its own);
* a position open when the data stops is closed at the open of the last bar before the gap,
  the last price it could trade at, so the account is flat across the hole and the first
  bar after it starts flat.

Bars of a stretch that ends before a run's range are warm-up as usual: only what they leave
behind (nothing, after a gap) reaches the range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from btpipeline.data.candles import Candles
from btpipeline.errors import InvalidParameterError

DEFAULT_MAX_GAP_HOURS = 72.0
NS_PER_HOUR = 3_600 * 1_000_000_000


@dataclass(frozen=True)
class Gap:
    """A hole between the bar at ``last_before_ns`` and the next one, at ``first_after_ns``."""

    last_before_ns: int
    first_after_ns: int

    @property
    def hours(self) -> float:
        return (self.first_after_ns - self.last_before_ns) / NS_PER_HOUR

    def describe(self) -> str:
        before = pd.Timestamp(self.last_before_ns, tz="UTC").isoformat()
        after = pd.Timestamp(self.first_after_ns, tz="UTC").isoformat()
        return f"{before} -> {after} ({self.hours:,.1f} h)"


def max_gap_ns(hours: float) -> int:
    if not (isinstance(hours, (int, float)) and math.isfinite(hours) and hours > 0):
        raise InvalidParameterError(
            f"Invalid parameter 'max_gap_hours': expected a finite number of hours > 0, got "
            f"{hours!r}. Fix: pass e.g. 72 (restart after anything longer than a long weekend).")
    return int(hours * NS_PER_HOUR)


_GAP_SCAN_BLOCK = 64


def segment_starts(timestamps: np.ndarray, limit_ns: int) -> np.ndarray:
    """Indices of the bars that start a stretch after a gap longer than ``limit_ns``.

    Timestamps increase, so a gap longer than the limit lies inside a block of 64 bars that
    spans more than the limit: only such blocks are searched bar by bar, so data without
    long holes costs one look at every 64th bar (a sweep asks once per combination)."""
    stamps = np.asarray(timestamps, dtype=np.int64)
    n = stamps.shape[0]
    if n < 2:
        return np.zeros(0, np.int64)
    corners = np.append(np.arange(0, n - 1, _GAP_SCAN_BLOCK), n - 1)
    wide = corners[:-1][np.diff(stamps[corners]) > limit_ns]
    pairs = (wide[:, None] + np.arange(_GAP_SCAN_BLOCK)).ravel()
    pairs = pairs[pairs < n - 1]
    return (pairs[stamps[pairs + 1] - stamps[pairs] > limit_ns] + 1).astype(np.int64)


def gaps_at(timestamps: np.ndarray, starts: np.ndarray) -> list[Gap]:
    stamps = np.asarray(timestamps, dtype=np.int64)
    return [Gap(int(stamps[i - 1]), int(stamps[i])) for i in starts]


def restarting_targets(candles: Candles, starts: np.ndarray, targets_of) -> np.ndarray:
    """``targets_of(stretch)`` for each stretch between gaps, flat into every gap: the last
    two targets before a gap are 0, so a position closes at the last bar's open."""
    bounds = [0, *(int(s) for s in starts), len(candles)]
    parts = [np.asarray(targets_of(candles.take(slice(a, b))), dtype=np.int8)
             for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    targets = np.concatenate(parts) if parts else np.zeros(0, np.int8)
    for start in bounds[1:-1]:
        targets[max(start - 2, 0):start] = 0
    return targets
