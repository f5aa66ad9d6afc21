"""A hole in the stored data longer than the limit restarts indicators and positions: pure
runs on candles with a hole, and a Dagster run whose warm-up reaches back across a missing
month (SQLite and PostgreSQL results)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from dagster import instance_for_test

from btpipeline.data.candles import Candles
from btpipeline.epics import get_epic
from btpipeline.errors import InvalidParameterError
from btpipeline.resources.market_data_store import MarketDataStore
from btpipeline.resources.results_database import ResultsDatabase
from btpipeline.strategies import get_strategy, run_backtest
from tests.support.backtest_runs import run_range
from tests.unit.test_strategies_reference import random_walk_candles

DAY_NS = 86_400 * 10**9


def _with_hole(candles: Candles, at: int, days: int) -> Candles:
    """``candles`` with every bar from ``at`` on moved ``days`` later (a hole in the data)."""
    stamps = np.array(candles.timestamp)
    stamps[at:] += days * DAY_NS
    return dataclasses.replace(candles, timestamp=stamps)


def _open_position_at(result, candles: Candles, around: int) -> int:
    """A bar near ``around`` with a position held (so the hole cuts through a trade)."""
    pos = result.simulation.positions
    for bar in range(around, around + 500):
        if pos[bar] != 0 and pos[bar - 1] == pos[bar]:
            return bar
    raise AssertionError("no held position near the cut: change the seed")


def test_a_hole_restarts_indicators_and_closes_the_position_before_it() -> None:
    candles, epic = random_walk_candles(12_000, seed=5), get_epic("EURUSD")
    strategy = "ema_crossover"
    start, end = int(candles.timestamp[0]), int(candles.timestamp[-1]) + 1
    plain = run_backtest(candles, strategy=strategy, params=None, epic=epic, start_ns=start,
                         end_ns=end)
    cut = _open_position_at(plain, candles, 6_000)
    holed = _with_hole(candles, cut, days=30)
    end = int(holed.timestamp[-1]) + 1
    result = run_backtest(holed, strategy=strategy, params=None, epic=epic, start_ns=start,
                          end_ns=end)
    assert [g.first_after_ns for g in result.gaps] == [int(holed.timestamp[cut])]
    # Flat across the hole: the open trade closed at the last bar's open before it.
    assert result.simulation.positions[cut - 1] == 0 and result.simulation.positions[cut] == 0
    last_close = result.fills[result.fills["timestamp"] < pd.Timestamp(holed.timestamp[cut],
                                                                        tz="UTC")].iloc[-1]
    assert last_close["action"] == "CLOSE"
    assert last_close["timestamp"] == pd.Timestamp(int(holed.timestamp[cut - 1]), tz="UTC")
    # After the hole: exactly what the strategy does on the later data alone.
    after = holed.take(slice(cut, None))
    alone = run_backtest(after, strategy=strategy, params=None, epic=epic,
                         start_ns=int(after.timestamp[0]), end_ns=end)
    later = result.fills[result.fills["timestamp"] >= pd.Timestamp(int(after.timestamp[0]),
                                                                    tz="UTC")]
    pd.testing.assert_frame_equal(later.reset_index(drop=True), alone.fills)
    # With a limit longer than the hole, everything carries across it as before.
    carried = run_backtest(holed, strategy=strategy, params=None, epic=epic, start_ns=start,
                           end_ns=end, max_gap_hours=24 * 31)
    assert carried.gaps == () and carried.simulation.positions[cut] != 0
    np.testing.assert_array_equal(carried.fills["price"], plain.fills["price"])


def test_weekends_are_not_gaps_and_the_limit_must_be_positive() -> None:
    candles = random_walk_candles(20_000, seed=3)  # has weekends (48 h without bars)
    strategy = get_strategy("macd_crossover")
    result = run_backtest(candles, strategy=strategy.name, params=None, epic=get_epic("EURUSD"),
                          start_ns=int(candles.timestamp[0]),
                          end_ns=int(candles.timestamp[-1]) + 1)
    assert result.gaps == ()
    with pytest.raises(InvalidParameterError, match="max_gap_hours"):
        run_backtest(candles, strategy=strategy.name, params=None, epic=get_epic("EURUSD"),
                     start_ns=int(candles.timestamp[0]), end_ns=int(candles.timestamp[-1]),
                     max_gap_hours=0.0)


def _march_fills(tmp_path, results_db: ResultsDatabase, months_before: list[str], name: str):
    resources = {"market_data": MarketDataStore(root=str(tmp_path / name)),
                 "results_db": results_db}
    with instance_for_test() as instance:
        for month in months_before:
            assert run_range(instance, resources, month, month, ["macd_crossover"]).success
        result = run_range(instance, resources, "2024-03-01", "2024-03-01", ["macd_crossover"])
        assert result.success
        logs = [e.message for e in instance.all_logs(result.run_id)]
    fills = results_db.read_signals(strategy="macd_crossover", epic="EURUSD",
                                    partition_keys=["2024-03-01"])
    return fills[["timestamp", "side", "action", "price", "pnl"]], logs


def test_a_run_whose_warm_up_crosses_a_missing_month_restarts_after_it(
        results_db: ResultsDatabase, tmp_path) -> None:
    # January stored, February missing: March's warm-up reads back into January.
    gapped, logs = _march_fills(tmp_path, results_db, ["2024-01-01"], "gapped")
    restarts = [m for m in logs if "gap in the stored data" in m]
    assert len(restarts) == 1 and "2024-01-31" in restarts[0] and "2024-03-0" in restarts[0]
    # The same March with nothing stored before it: identical fills, nothing carried in.
    alone, logs = _march_fills(tmp_path, ResultsDatabase(
        url=f"sqlite:///{tmp_path / 'alone.db'}"), [], "alone")
    assert not [m for m in logs if "gap in the stored data" in m]
    assert len(gapped) > 10 and gapped["action"].iloc[0] == "OPEN"
    pd.testing.assert_frame_equal(gapped.reset_index(drop=True), alone.reset_index(drop=True))
