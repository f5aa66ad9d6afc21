"""Small performance counters, usable by the executor and inside strategies.

    counter = PerformanceCounter("signal_eval", CounterType.TIMING)
    timer_id = counter.start_timer()
    ...
    duration_us = counter.stop_timer(timer_id)
    counter.get_stats()  # {"count": 1, "average": ..., "p50": ..., "p99": ..., "max": ...}

    with PerformanceProfiler("load_candles") as profiler:
        ...
    profiler.get_stats()

Every figure is in microseconds (``count`` is a count). Counters are thread-safe; a process
keeps one registry, so profilers with the same name add to the same counter.
"""

from __future__ import annotations

import enum
import itertools
import math
import threading
import time
from collections import deque
from types import TracebackType

DEFAULT_MAX_SAMPLES = 100_000


class CounterType(enum.Enum):
    TIMING = "timing"  # durations in µs, from start_timer/stop_timer or record()
    COUNT = "count"  # increments; stats describe the increments


class PerformanceCounter:
    """Collects samples (µs for TIMING) and reports count / average / p50 / p99 / max."""

    def __init__(
        self,
        name: str,
        counter_type: CounterType = CounterType.TIMING,
        max_samples: int = DEFAULT_MAX_SAMPLES,
    ) -> None:
        self.name = name
        self.counter_type = counter_type
        self._samples: deque[int] = deque(maxlen=max_samples)
        self._count = 0
        self._total = 0
        self._max = 0
        self._open: dict[int, int] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def start_timer(self) -> int:
        """Start a timer; returns its id for :meth:`stop_timer`."""
        timer_id = next(self._ids)
        with self._lock:
            self._open[timer_id] = time.perf_counter_ns()
        return timer_id

    def stop_timer(self, timer_id: int) -> int:
        """Stop timer ``timer_id``, record and return its duration in µs."""
        end = time.perf_counter_ns()
        with self._lock:
            start = self._open.pop(timer_id, None)
        if start is None:
            raise KeyError(
                f"Counter {self.name!r} has no running timer {timer_id}; expected an id returned "
                "by start_timer() and not yet stopped. Fix: call stop_timer once per start_timer."
            )
        duration_us = (end - start) // 1000
        self.record(duration_us)
        return duration_us

    def record(self, value: int) -> None:
        """Add one sample (µs for TIMING counters)."""
        value = int(value)
        with self._lock:
            self._samples.append(value)
            self._count += 1
            self._total += value
            self._max = max(self._max, value)

    def increment(self, amount: int = 1) -> None:
        self.record(amount)

    def get_stats(self) -> dict[str, float]:
        """count, total, average, min, p50, p99, max (µs); percentiles over the kept samples."""
        with self._lock:
            samples = sorted(self._samples)
            count, total, maximum = self._count, self._total, self._max
        if not count:
            return {"count": 0, "total": 0, "average": 0.0, "min": 0, "p50": 0, "p99": 0, "max": 0}
        return {
            "count": count,
            "total": total,
            "average": total / count,
            "min": samples[0],
            "p50": _percentile(samples, 50),
            "p99": _percentile(samples, 99),
            "max": maximum,
        }

    def reset(self) -> None:
        with self._lock:
            self._samples.clear()
            self._open.clear()
            self._count = self._total = self._max = 0


def _percentile(sorted_samples: list[int], pct: float) -> int:
    """Nearest-rank percentile of an already sorted, non-empty list."""
    rank = max(1, math.ceil(pct / 100 * len(sorted_samples)))
    return sorted_samples[rank - 1]


_REGISTRY: dict[str, PerformanceCounter] = {}
_REGISTRY_LOCK = threading.Lock()


def get_counter(name: str, counter_type: CounterType = CounterType.TIMING) -> PerformanceCounter:
    """The process-wide counter called ``name`` (created on first use)."""
    with _REGISTRY_LOCK:
        counter = _REGISTRY.get(name)
        if counter is None:
            counter = _REGISTRY[name] = PerformanceCounter(name, counter_type)
        return counter


def all_stats() -> dict[str, dict[str, float]]:
    """Stats of every registered counter, by name."""
    with _REGISTRY_LOCK:
        counters = list(_REGISTRY.values())
    return {counter.name: counter.get_stats() for counter in counters}


class PerformanceProfiler:
    """Context manager timing its block into the registered counter ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.counter = get_counter(name)
        self.duration_us: int | None = None
        self._timer_id: int | None = None

    def __enter__(self) -> PerformanceProfiler:
        self._timer_id = self.counter.start_timer()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._timer_id is not None:
            self.duration_us = self.counter.stop_timer(self._timer_id)
            self._timer_id = None

    def get_stats(self) -> dict[str, float]:
        return self.counter.get_stats()
