"""Tick latency bookkeeping: a rolling window of the last N ticks, in microseconds."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class LatencySummary:
    """Nearest-rank percentiles of the window, in milliseconds (None before the first tick)."""

    samples: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None


def percentile(ordered: list[int], fraction: float) -> int:
    """Nearest-rank percentile of an ascending, non-empty list."""
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


class LatencyWindow:
    """The latencies (µs) of the last ``size`` ticks, plus counts over the whole run."""

    def __init__(self, size: int, budget_us: int) -> None:
        if size < 1:
            raise ValueError(f"latency window size is {size}; it must be >= 1")
        self.size = size
        self.budget_us = budget_us
        self._window: deque[int] = deque(maxlen=size)
        self.ticks = 0
        self.missed_deadlines = 0
        self.last_us: int | None = None

    def add(self, latency_us: int) -> bool:
        """Record one tick; True when it missed the budget."""
        self._window.append(latency_us)
        self.ticks += 1
        self.last_us = latency_us
        missed = latency_us > self.budget_us
        self.missed_deadlines += missed
        return missed

    def summary(self) -> LatencySummary:
        if not self._window:
            return LatencySummary(0, None, None, None)
        ordered = sorted(self._window)
        return LatencySummary(len(ordered), percentile(ordered, 0.50) / 1000,
                              percentile(ordered, 0.99) / 1000, ordered[-1] / 1000)
