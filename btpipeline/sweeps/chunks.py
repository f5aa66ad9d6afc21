"""Sweep chunks: many grid combinations per step, sharing candles and indicator series.

One Dagster step per combination costs ~0.1 s of bookkeeping and recomputes indicators its
neighbours share. A chunk is a run of consecutive combinations handled by one step: it reads
the candles once (with the chunk's longest warm-up), computes each distinct indicator series
once (``indicator_cache``), and simulates every combination with the same kernel as a single
backtest (``backtest_metrics``: ``run_backtest``'s metrics without building its frames). A
longer warm-up than a combination's own changes none of its fills (the warm-up invariant the
backtest assets rely on, pinned by the tests), so a chunk's rows equal the rows of the same
combinations run one by one.

Plain Python (no Dagster): the job, the tests and the benchmarks share it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from btpipeline.data.candles import Candles
from btpipeline.epics import get_epic
from btpipeline.errors import InvalidParameterError
from btpipeline.strategies import Account
from btpipeline.strategies.backtest import backtest_metrics
from btpipeline.strategies.indicator_cache import IndicatorCache, indicator_cache
from btpipeline.sweeps.grid import sweep_strategy
from btpipeline.sweeps.heap import tune_heap
from btpipeline.sweeps.spec import CandleReader, SweepTask, result_row


@dataclass(frozen=True)
class SweepChunk:
    """Consecutive combinations of one sweep, run by one step."""

    index: int
    tasks: tuple[SweepTask, ...]

    @property
    def mapping_key(self) -> str:
        """``k003_c0150_c0199``: the chunk and its first and last combination (sorts in grid
        order; a Dagster mapping key)."""
        first, last = self.tasks[0].combination.index, self.tasks[-1].combination.index
        return f"k{self.index:03d}_c{first:04d}_c{last:04d}"

    @property
    def warmup_bars(self) -> int:
        strategy = sweep_strategy(self.tasks[0].strategy)
        return max(strategy.warmup_bars(strategy.make_params(t.params)) for t in self.tasks)


def chunk_count(combinations: int, *, workers: int, max_per_chunk: int) -> int:
    """Chunks for a grid: one per worker, more when a chunk would exceed ``max_per_chunk``
    combinations (a bounded step: its retry repeats at most that much work)."""
    for name, value in (("workers", workers), ("max_per_chunk", max_per_chunk)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidParameterError(
                f"Invalid sweep {name}: expected a whole number >= 1, got {value!r}. "
                f"Fix: e.g. {name}: {2 if name == 'workers' else 500}.")
    if combinations < 1:
        return 0
    return max(min(workers, combinations), math.ceil(combinations / max_per_chunk))


def split_chunks(tasks: Sequence[SweepTask], count: int) -> list[SweepChunk]:
    """``tasks`` cut into ``count`` consecutive chunks whose sizes differ by at most one."""
    count = max(1, min(count, len(tasks)))
    size, extra = divmod(len(tasks), count)
    chunks, start = [], 0
    for index in range(count):
        stop = start + size + (1 if index < extra else 0)
        chunks.append(SweepChunk(index=index, tasks=tuple(tasks[start:stop])))
        start = stop
    return chunks


def iter_chunk(chunk: SweepChunk, candles: Candles,
               cache: IndicatorCache | None = None) -> Iterator[dict[str, Any]]:
    """Each combination's row, in order, computed on ``candles`` (which must hold the chunk's
    warm-up before the range). Yields as it goes, so a caller can stream rows out."""
    strategy = sweep_strategy(chunk.tasks[0].strategy)
    epics = {name: get_epic(name) for name in {task.epic for task in chunk.tasks}}
    for task in chunk.tasks:
        started = time.perf_counter()
        result = backtest_metrics(candles, strategy=strategy, params=task.params,
                                  epic=epics[task.epic], start_ns=task.start_ns,
                                  end_ns=task.end_ns, costs=task.costs,
                                  size_units=task.size_units,
                                  account=Account(initial_capital=task.initial_capital))
        compute_ms = (time.perf_counter() - started) * 1e3
        yield result_row(task, result.metrics, result.fills, 0.0, compute_ms)


def run_chunk(chunk: SweepChunk, reader: CandleReader) -> tuple[list[dict[str, Any]], dict]:
    """Every row of ``chunk`` and the chunk's figures (read time, cache hits and misses).
    Tunes the process's heap first (heap.py: freed arrays stay mapped for the next
    combination)."""
    tune_heap()
    first = chunk.tasks[0]
    started = time.perf_counter()
    candles = reader.read_range(epic=first.epic, start_ns=first.start_ns, end_ns=first.end_ns,
                                warmup_bars=chunk.warmup_bars)
    read_ms = (time.perf_counter() - started) * 1e3
    with indicator_cache(candles) as cache:
        rows = list(iter_chunk(chunk, candles, cache))
    figures = {"combinations": len(rows), "read_ms": read_ms, "cache_hits": cache.hits,
               "cache_misses": cache.misses, "cache_mb": cache.size_bytes / 2**20}
    return rows, figures
