"""The per-stretch sums of segments.py against the per-bar definition (simulator.py's bar P&L,
daily_table's sums, account.stop_out_bar) on random targets: run_backtest and the sweep share
the stretch sums, so only this test compares them with the bar-by-bar figures."""

from __future__ import annotations

import numpy as np
import pytest

from btpipeline.data.candles import Candles
from btpipeline.strategies import Account, CostModel
from btpipeline.strategies.account import stop_out_bar
from btpipeline.strategies.daily import daily_table
from btpipeline.strategies.segments import daily_figures
from btpipeline.strategies.simulator import bar_arrays, simulate_changes
from tests.unit.test_strategies_reference import random_walk_candles

COSTS = CostModel(spread_pips=1.0, pip_size=0.0001, commission_per_lot=7.0, slippage_pips=0.5)


def _with_hole(candles: Candles) -> Candles:
    """Four days cut out of the middle: a day with no bars between two that have some."""
    ts = candles.timestamp
    keep = (ts < ts[6_000]) | (ts >= ts[6_000] + 4 * 86_400 * 10**9)
    return Candles(*(np.asarray(getattr(candles, f))[keep] for f in
                     ("timestamp", "open", "high", "low", "close", "volume")))


def _targets(n: int, seed: int, hold: int) -> np.ndarray:
    """Random -1/0/+1 targets held for ~``hold`` bars (1: a change nearly every bar)."""
    rng = np.random.default_rng(seed)
    flips = rng.random(n) < 1.0 / hold
    values = rng.integers(-1, 2, n).astype(np.int8)
    return values[np.maximum.accumulate(np.where(flips, np.arange(n), 0))]


@pytest.mark.parametrize(("seed", "hold", "by_rate", "sized", "lo"), [
    (1, 1, False, False, 3_000),
    (2, 40, False, False, 0),
    (3, 5_000, False, True, 3_000),  # stretches running over several days
    (4, 7, True, False, 2_500),  # a base-currency account: each bar divided by its close
    (5, 60, True, True, 1),
])
def test_stretch_sums_equal_the_bar_by_bar_figures(seed: int, hold: int, by_rate: bool,
                                                    sized: bool, lo: int) -> None:
    candles = _with_hole(random_walk_candles(12_000, seed=seed))
    targets = _targets(len(candles), seed, hold)
    size = (np.random.default_rng(seed).uniform(5e4, 2e5, len(candles)) if sized else 1e5)
    if sized:  # a size holds for a whole position, as sizing.py makes it
        change = np.flatnonzero(np.diff(targets, prepend=0)) + 1
        size = np.repeat(size[np.append(0, change)], np.diff(np.r_[0, change, len(candles)]))
        size = np.where(np.r_[0, targets[:-1]] != 0, size, 0.0)
    ts = candles.timestamp
    run = simulate_changes(candles, targets, costs=COSTS, size_units=size,
                           start_ns=int(ts[lo]), end_ns=int(ts[-1]) + 1)
    figures = daily_figures(run, COSTS, by_rate=by_rate, capital=1e6, stop_equity=0.0)
    arrays = bar_arrays(run, COSTS)
    bar_pnl = arrays.bar_pnl / np.asarray(candles.close)[lo:] if by_rate else arrays.bar_pnl
    daily = daily_table(arrays.timestamps, bar_pnl, arrays.positions)
    assert list(figures.days.astype(str)) == list(daily["day"])
    scale = np.abs(bar_pnl).sum()
    np.testing.assert_allclose(figures.pnl, daily["pnl"], rtol=0, atol=1e-13 * scale)
    assert figures.bars == len(bar_pnl) and figures.bars_in_market == daily["bars_in_market"].sum()
    assert run.fill_count() == len(arrays.fills.bar)
    pnl, price = run.closed_trades()
    closes = arrays.fills.is_close
    assert np.array_equal(pnl, arrays.fills.pnl[closes])
    assert np.array_equal(price, arrays.fills.price[closes])


@pytest.mark.parametrize("margin", [-1e-9, 1e-9, 1.0])
def test_the_stop_out_shortcut_never_contradicts_the_bar_by_bar_check(margin: float) -> None:
    """Capital chosen so that the lowest closing equity lands just below (-1e-9), just above
    (1e-9) or far above (1.0) half of it, the stop-out level."""
    candles = random_walk_candles(8_000, seed=11)
    targets = _targets(len(candles), 11, 30)
    ts = candles.timestamp
    run = simulate_changes(candles, targets, costs=COSTS, size_units=1e5,
                           start_ns=int(ts[100]), end_ns=int(ts[-1]) + 1)
    bar_pnl = bar_arrays(run, COSTS).bar_pnl
    lowest = float(np.cumsum(bar_pnl).min())
    assert lowest < 0
    capital = -2.0 * lowest * (1.0 + margin)
    account = Account(initial_capital=capital, stop_out_level=0.5)
    figures = daily_figures(run, COSTS, by_rate=False, capital=capital,
                            stop_equity=account.stop_out_equity)
    stop = stop_out_bar(bar_pnl, account)
    assert (stop is not None) == (margin < 0)
    assert figures.clear_of_stop == (margin == 1.0)  # near the level: decided bar by bar
