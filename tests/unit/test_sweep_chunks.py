"""Sweep chunks: shared candles and indicator series, the same rows as one-by-one backtests."""

from __future__ import annotations

import datetime as dt
import platform
import sys
from pathlib import Path

import numpy as np
import pytest

from btpipeline.data.store import CandleStore, generate_into_store
from btpipeline.epics import get_epic
from btpipeline.errors import InvalidParameterError
from btpipeline.strategies import (
    Account,
    backtest_metrics,
    ema,
    get_strategy,
    rolling_std,
    run_backtest,
)
from btpipeline.strategies.indicator_cache import active_cache, indicator_cache
from btpipeline.sweeps.chunks import chunk_count, run_chunk, split_chunks
from btpipeline.sweeps.heap import tune_heap
from btpipeline.sweeps.spec import build_spec, run_task

GRIDS = {
    "macd_crossover": {"fast": [6, 12], "slow": [20, 26], "signal": [5, 9]},
    "ema_crossover": {"fast": [5, 10, 20], "slow": [30, 50]},
    "rsi_mean_reversion": {"period": [7, 14], "lower": [25, 30]},
    "bollinger_breakout": {"window": [10, 20], "k": [1.5, 2.0]},
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> CandleStore:
    """One month to report plus a month of warm-up, synthetic EURUSD."""
    root: Path = tmp_path_factory.mktemp("chunk_data")
    candle_store = CandleStore(root)
    generate_into_store(candle_store, ["EURUSD"], dt.date(2023, 12, 1), dt.date(2024, 1, 31),
                        seed=11)
    return candle_store


@pytest.fixture(scope="module")
def jpy_store(tmp_path_factory: pytest.TempPathFactory) -> CandleStore:
    candle_store = CandleStore(tmp_path_factory.mktemp("chunk_jpy"))
    generate_into_store(candle_store, ["USDJPY"], dt.date(2023, 12, 1), dt.date(2024, 1, 31),
                        seed=12)
    return candle_store


def _spec(strategy: str):
    return build_spec(strategy=strategy, epic="EURUSD", start_date="2024-01-01",
                      end_date="2024-01-31", grid=GRIDS[strategy],
                      costs={"spread_pips": 0.8, "commission_per_lot": 3.0,
                             "slippage_pips": 0.1}, skip_invalid=True)


@pytest.mark.parametrize("strategy", sorted(GRIDS))
def test_a_chunk_gives_the_rows_of_one_by_one_backtests(strategy: str,
                                                        store: CandleStore) -> None:
    spec = _spec(strategy)
    [chunk] = split_chunks(spec.tasks, 1)
    rows, figures = run_chunk(chunk, store)
    assert len(rows) == len(spec.tasks) == figures["combinations"]
    for task, row in zip(spec.tasks, rows, strict=True):
        single = run_task(task, store)
        timing = {"read_ms", "compute_ms"}
        assert {k: v for k, v in row.items() if k not in timing} == \
            {k: v for k, v in single.items() if k not in timing}, task.mapping_key


@pytest.mark.parametrize("strategy", sorted(GRIDS))
@pytest.mark.parametrize(("epic", "settings"), [
    ("EURUSD", {"size_units": 100_000}),
    ("EURUSD", {"size_units": 5_000_000, "account": Account(initial_capital=2_000)}),  # stops out
    ("USDJPY", {"equity_fraction": 0.5}),  # P&L converted fill by fill, sized by equity
])
def test_the_sweep_kernel_reports_exactly_the_metrics_of_run_backtest(
        strategy: str, epic: str, settings: dict, store: CandleStore,
        jpy_store: CandleStore) -> None:
    candles = (store if epic == "EURUSD" else jpy_store).read_range(epic, 0, 2**62)
    start_ns = int(np.datetime64("2024-01-01", "ns").astype(np.int64))
    for task in _spec(strategy).tasks[:3]:
        common = {"strategy": strategy, "params": task.params, "epic": get_epic(epic),
                  "start_ns": start_ns, "end_ns": start_ns + 31 * 86_400 * 10**9,
                  "costs": task.costs, **settings}
        full = run_backtest(candles, **common)
        fast = backtest_metrics(candles, **common)
        assert fast.metrics == full.metrics and fast.fills == len(full.fills), task.mapping_key


def test_a_chunk_computes_each_shared_indicator_once(store: CandleStore) -> None:
    spec = _spec("ema_crossover")  # 3 fast x 2 slow: 5 distinct EMAs of the close, not 12
    [chunk] = split_chunks(spec.tasks, 1)
    _, figures = run_chunk(chunk, store)
    assert figures["cache_misses"] == 5
    assert figures["cache_hits"] == 2 * len(spec.tasks) - 5


def test_only_the_candles_own_prices_are_cached(store: CandleStore) -> None:
    candles = store.read_range("EURUSD", 0, 2**62)
    derived = candles.close * 2.0
    with indicator_cache(candles) as cache:
        first = ema(candles.close, 10)
        assert ema(candles.close[: len(candles)], 10) is first  # a view of the same memory
        assert ema(derived, 10) is not ema(derived, 10)  # a derived series is never kept
        assert ema(candles.close[1:], 10) is not first  # another start is another series
        assert rolling_std(candles.close, 20) is rolling_std(candles.close, 20)
    assert cache.misses == 3 and cache.hits == 2
    assert active_cache() is None
    assert ema(candles.close, 10) is not ema(candles.close, 10)  # no cache outside the block


def test_cached_series_are_read_only(store: CandleStore) -> None:
    candles = store.read_range("EURUSD", 0, 2**62)
    with indicator_cache(candles):
        series = ema(candles.close, 10)
        with pytest.raises(ValueError, match="read-only"):
            series[0] = 0.0


def test_the_cache_keeps_to_its_memory_bound(store: CandleStore) -> None:
    candles = store.read_range("EURUSD", 0, 2**62)
    one_series = candles.close.nbytes
    with indicator_cache(candles, max_bytes=3 * one_series) as cache:
        for span in range(2, 12):
            ema(candles.close, span)
        assert cache.size_bytes <= 3 * one_series
        assert np.array_equal(ema(candles.close, 11), ema(candles.close[:], 11))


def test_a_user_strategy_without_the_helpers_still_runs_in_a_chunk(store: CandleStore) -> None:
    strategy = get_strategy("macd_crossover")
    candles = store.read_range("EURUSD", 0, 2**62)
    with indicator_cache(candles) as cache:
        # An indicator computed without the helpers (here: numpy directly) is simply not cached.
        manual = np.convolve(candles.close, np.ones(5) / 5, mode="same")
        assert manual.flags.writeable and cache.misses == 0
        strategy.target_positions(candles, strategy.make_params({}))


@pytest.mark.parametrize(("combinations", "workers", "per_chunk", "expected"), [
    (100, 2, 500, 2), (1, 2, 500, 1), (10_000, 2, 500, 20), (0, 2, 500, 0), (7, 8, 500, 7)])
def test_chunk_count_is_one_per_worker_unless_chunks_grow_too_large(
        combinations: int, workers: int, per_chunk: int, expected: int) -> None:
    assert chunk_count(combinations, workers=workers, max_per_chunk=per_chunk) == expected


def test_chunks_cover_the_grid_in_order_with_sizes_within_one() -> None:
    tasks = _spec("macd_crossover").tasks
    chunks = split_chunks(tasks, 3)
    assert [t for c in chunks for t in c.tasks] == list(tasks)
    assert max(len(c.tasks) for c in chunks) - min(len(c.tasks) for c in chunks) <= 1
    assert [c.mapping_key for c in chunks] == sorted(c.mapping_key for c in chunks)


def test_a_bad_chunk_setting_names_it_and_the_fix() -> None:
    with pytest.raises(InvalidParameterError, match=r"max_per_chunk.*Fix"):
        chunk_count(10, workers=2, max_per_chunk=0)


def test_the_heap_is_tuned_once_on_glibc_and_left_alone_elsewhere() -> None:
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert tune_heap() is glibc
    assert tune_heap() is glibc  # once per process: the second call changes nothing
