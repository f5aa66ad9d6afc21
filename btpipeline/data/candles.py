"""The in-memory shape of 1-minute OHLC candles that every part of btpipeline passes around."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Candles:
    """Column arrays of equal length, sorted by strictly increasing ``timestamp``.

    ``timestamp`` is int64 nanoseconds since the Unix epoch, UTC, each the bar's open time.
    Prices are float64 mid prices. Arrays may be read-only views of a memory-mapped file.
    """

    timestamp: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return int(self.timestamp.shape[0])

    def between(self, start_ns: int, end_ns: int) -> Candles:
        """The bars with ``start_ns <= timestamp < end_ns`` (views, no copy)."""
        lo = int(np.searchsorted(self.timestamp, start_ns, side="left"))
        hi = int(np.searchsorted(self.timestamp, end_ns, side="left"))
        return self.take(slice(lo, hi))

    def take(self, index: slice) -> Candles:
        return Candles(
            self.timestamp[index], self.open[index], self.high[index],
            self.low[index], self.close[index], self.volume[index],
        )

    @staticmethod
    def concat(parts: list[Candles]) -> Candles:
        """Join consecutive chunks (copies; a single chunk is returned as it is)."""
        if len(parts) == 1:
            return parts[0]
        if not parts:
            empty_i = np.empty(0, dtype=np.int64)
            empty_f = np.empty(0, dtype=np.float64)
            return Candles(empty_i, empty_f, empty_f, empty_f, empty_f, empty_f)
        return Candles(*(np.concatenate([getattr(p, f) for p in parts]) for f in FIELDS))


FIELDS = ("timestamp", "open", "high", "low", "close", "volume")
