"""A memo of indicator series shared by the combinations of one sweep chunk.

A sweep of MACD over 5 fast x 5 slow x 4 signal spans needs 10 distinct EMAs of the close,
not 200. Inside ``with indicator_cache(candles):`` the indicator helpers of
:mod:`btpipeline.strategies.indicators` (``ema``, ``wilder_rsi``, ``rolling_mean``,
``rolling_std``, and ``macd``'s line with its ``ema``s) return the series already computed
for the same function, arguments and input, instead of computing it again. Strategies need
no change: a strategy that calls the helpers on the candles' fields benefits; one that
computes its own indicators runs as before, without the cache.

What is cached: only series computed from the candles' own price arrays (``open``, ``high``,
``low``, ``close`` of the candles given to the cache, or views of them), keyed by the
function, its arguments and the exact memory the input covers (start address, length,
stride). Derived inputs (an MACD line, a difference of two EMAs) are never cached: they are
new arrays per combination, and keeping them would only cost memory. Cached series are
read-only, so a strategy that writes into an indicator's output fails loudly instead of
corrupting its neighbours' results. The memo is bounded (``max_bytes``, least recently used
first out), so a large grid keeps a steady footprint.

Outside a ``with`` block nothing is cached and the helpers cost one context-variable read.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np

from btpipeline.data.candles import Candles

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
"""Memo bound: ~85 year-long 1-minute series of float64 (374k bars x 8 bytes each)."""

_PRICE_FIELDS = ("open", "high", "low", "close")


@dataclass(frozen=True)
class _Span:
    """The memory of one price array: ``[start, stop)`` addresses."""

    start: int
    stop: int


def _address(array: np.ndarray) -> int:
    return int(array.__array_interface__["data"][0])


class IndicatorCache:
    """Series already computed in this chunk, by (function, arguments, input memory)."""

    def __init__(self, candles: Candles, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._candles = candles  # keeps the price arrays (and so their addresses) alive
        self._spans = [self._span(getattr(candles, name)) for name in _PRICE_FIELDS]
        self._values: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._bytes = 0
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _span(array: np.ndarray) -> _Span:
        start = _address(array)
        return _Span(start, start + array.nbytes)

    def _input_key(self, source: np.ndarray) -> tuple[int, int, int] | None:
        """(address, length, stride) when ``source`` lies inside one of the candles' price
        arrays; None for any other array (not cached)."""
        if not isinstance(source, np.ndarray) or source.dtype != np.float64 or source.ndim != 1:
            return None
        start = _address(source)
        stop = start + source.nbytes
        if any(span.start <= start and stop <= span.stop for span in self._spans):
            return (start, int(source.shape[0]), int(source.strides[0]))
        return None

    def get_or_compute(self, function: str, source: np.ndarray, args: tuple[Hashable, ...],
                       compute: Callable[[], np.ndarray], counted: bool = True) -> np.ndarray:
        """The memoised ``compute()`` for ``function(source, *args)``, or ``compute()`` itself
        when ``source`` is not one of the candles' price arrays. ``counted=False`` keeps the
        lookup out of ``hits`` and ``misses`` (which count indicator series)."""
        input_key = self._input_key(source)
        if input_key is None:
            return compute()
        key = (function, input_key, args)
        cached = self._values.get(key)
        if cached is not None:
            self._values.move_to_end(key)
            self.hits += counted
            return cached
        self.misses += counted
        value = compute()
        value.setflags(write=False)
        self._store(key, value)
        return value

    def _store(self, key: Hashable, value: np.ndarray) -> None:
        self._values[key] = value
        self._bytes += value.nbytes
        while self._bytes > self.max_bytes and len(self._values) > 1:
            _, evicted = self._values.popitem(last=False)
            self._bytes -= evicted.nbytes

    @property
    def size_bytes(self) -> int:
        return self._bytes


_ACTIVE: ContextVar[IndicatorCache | None] = ContextVar("btpipeline_indicator_cache",
                                                        default=None)


def active_cache() -> IndicatorCache | None:
    """The cache of the enclosing ``with indicator_cache(...)`` block, if any."""
    return _ACTIVE.get()


@contextmanager
def indicator_cache(candles: Candles,
                    max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[IndicatorCache]:
    """Share indicator series computed from ``candles`` within the block (see module doc)."""
    cache = IndicatorCache(candles, max_bytes=max_bytes)
    token = _ACTIVE.set(cache)
    try:
        yield cache
    finally:
        _ACTIVE.reset(token)


def memoised(function: str, source: np.ndarray, args: tuple[Hashable, ...],
             compute: Callable[[], np.ndarray], counted: bool = True) -> np.ndarray:
    """``compute()``, through the active cache when there is one. The simulation's own
    per-candles arrays (segments.py: day starts, price ranges) pass ``counted=False``."""
    cache = _ACTIVE.get()
    if cache is None:
        return compute()
    return cache.get_or_compute(function, source, args, compute, counted)
