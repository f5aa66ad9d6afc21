"""The simulator's rules on hand-computed cases, no look-ahead, and partition splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btpipeline.data.candles import Candles
from btpipeline.epics import get_epic
from btpipeline.strategies import CostModel, compute_metrics, get_strategy, run_backtest, simulate
from btpipeline.strategies.daily import NS_PER_DAY
from tests.unit.test_strategies_reference import (
    MINUTE_NS,
    MONDAY_2024_01_01_NS,
    random_walk_candles,
)

STRATEGY_NAMES = ["macd_crossover", "ema_crossover", "rsi_mean_reversion", "bollinger_breakout"]

# Six bars: three before midnight, three after. Spread 1 pip + slippage 0.5 pip -> fills 1 pip
# (0.0001) from the open against the trader; commission 7 per 100k per side; size 100k.
SIX_OPEN = [1.1000, 1.1010, 1.1020, 1.1030, 1.1015, 1.1005]
SIX_CLOSE = [1.1008, 1.1018, 1.1028, 1.1012, 1.1004, 1.1000]
SIX_TARGETS = [1, 1, -1, -1, 0, 1]  # held: 0, +1, +1, -1, -1, 0 (the last target never fills)
COSTS = CostModel(spread_pips=1.0, pip_size=0.0001, commission_per_lot=7.0, slippage_pips=0.5)
DAY2_NS = MONDAY_2024_01_01_NS + NS_PER_DAY


def six_bars() -> Candles:
    ts = DAY2_NS + np.array([-3, -2, -1, 0, 1, 2], dtype=np.int64) * MINUTE_NS
    o, c = np.array(SIX_OPEN), np.array(SIX_CLOSE)
    return Candles(ts, o, np.maximum(o, c), np.minimum(o, c), c, np.ones(6))


def run_six(start_bar: int = 0, size: float = 100_000):
    candles = six_bars()
    return simulate(candles, np.array(SIX_TARGETS, dtype=np.int8), costs=COSTS,
                    size_units=size, start_ns=int(candles.timestamp[start_bar]),
                    end_ns=int(candles.timestamp[-1]) + 1)


def test_six_bars_fill_prices_and_trade_pnl_by_hand() -> None:
    fills = run_six().fills
    assert fills["timestamp"].dt.tz is not None
    expected = pd.to_datetime(six_bars().timestamp[[1, 3, 3, 5]], utc=True)
    assert list(fills["timestamp"]) == list(expected)
    assert list(fills["side"]) == ["BUY", "SELL", "SELL", "BUY"]
    assert list(fills["action"]) == ["OPEN", "CLOSE", "OPEN", "CLOSE"]
    # BUY at open + 1 pip, SELL at open - 1 pip.
    np.testing.assert_allclose(fills["price"], [1.1011, 1.1029, 1.1029, 1.1006], atol=1e-15)
    # Long 1.1011 -> 1.1029 = 180, short 1.1029 -> 1.1006 = 230; minus 2 x 7 commission each.
    np.testing.assert_allclose(fills["pnl"], [0.0, 166.0, 0.0, 216.0], atol=1e-9)
    assert (fills["size"] == 100_000).all()


def test_six_bars_mark_to_market_sums_to_the_trades() -> None:
    sim = run_six()
    # bar1: +80 close-open, -17 (1 pip x 100k + 7); bar2: +20 gap +80; bar3: +20 gap, short
    # +180, -2 x 17; bar4: short gap -30, +110; bar5: short gap -10, -17 for the close.
    np.testing.assert_allclose(sim.bar_pnl, [0.0, 63.0, 100.0, 166.0, 80.0, -27.0], atol=1e-9)
    assert sim.bar_pnl.sum() == pytest.approx(166.0 + 216.0, abs=1e-9)
    assert sim.positions.tolist() == [0, 1, 1, -1, -1, 0]
    assert sim.end_position == 0  # the last bar's +1 target is never filled


def test_six_bars_daily_rows_split_at_utc_midnight() -> None:
    daily = run_six().daily
    assert daily["day"].tolist() == ["2024-01-01", "2024-01-02"]
    np.testing.assert_allclose(daily["pnl"], [163.0, 219.0], atol=1e-9)
    assert daily["bars"].tolist() == [3, 3]
    assert daily["bars_in_market"].tolist() == [2, 2]


def test_a_position_opened_in_warm_up_reports_its_full_pnl_in_range() -> None:
    sim = run_six(start_bar=2)
    assert list(sim.fills["action"]) == ["CLOSE", "OPEN", "CLOSE"]
    np.testing.assert_allclose(sim.fills["pnl"], [166.0, 0.0, 216.0], atol=1e-9)
    np.testing.assert_allclose(sim.bar_pnl, [100.0, 166.0, 80.0, -27.0], atol=1e-9)
    assert sim.positions.tolist() == [1, -1, -1, 0]


def test_end_ns_cuts_the_range_and_leaves_the_pending_target_unfilled() -> None:
    candles = six_bars()
    sim = simulate(candles, np.array(SIX_TARGETS, dtype=np.int8), costs=COSTS, size_units=1e5,
                   start_ns=int(candles.timestamp[0]), end_ns=int(candles.timestamp[3]))
    assert list(sim.fills["action"]) == ["OPEN"]  # bar 2's -1 would fill at bar 3: not here
    assert sim.end_position == 1 and len(sim.bar_pnl) == 3


def test_zero_costs_trade_at_the_mid_open() -> None:
    candles = six_bars()
    free = CostModel(spread_pips=0.0, pip_size=0.0001)
    sim = simulate(candles, np.array(SIX_TARGETS, dtype=np.int8), costs=free, size_units=1e5,
                   start_ns=int(candles.timestamp[0]), end_ns=int(candles.timestamp[-1]) + 1)
    np.testing.assert_allclose(sim.fills["price"], [1.1010, 1.1030, 1.1030, 1.1005], atol=1e-15)
    np.testing.assert_allclose(sim.fills["pnl"], [0.0, 200.0, 0.0, 250.0], atol=1e-9)


def test_run_backtest_returns_params_metrics_and_trades() -> None:
    candles = random_walk_candles(5000, seed=11)
    epic = get_epic("USDJPY")
    result = run_backtest(candles, strategy="ema_crossover", params={"fast": 5}, epic=epic,
                          start_ns=int(candles.timestamp[1000]), end_ns=int(candles.timestamp[-1]))
    assert result.params == {"fast": 5, "slow": 50}
    assert set(result.trades.columns) >= {"timestamp", "side", "price", "pnl"}
    assert result.metrics["num_trades"] == len(result.trades) > 0
    # Returns are relative to the account (default 100,000 USD), no longer to the notional at
    # epic.reference_price. USDJPY P&L is in JPY: a closed trade's is divided by its fill's rate.
    assert result.account.initial_capital == 100_000 and result.account.currency == "USD"
    assert result.metrics["total_return"] == pytest.approx(result.daily["pnl"].sum() / 100_000)
    sim_fills = result.simulation.fills
    np.testing.assert_allclose(result.fills["pnl"], sim_fills["pnl"] / sim_fills["price"])
    assert result.end_position == result.simulation.positions[-1]
    assert list(result.daily.columns) == ["day", "pnl", "bars", "bars_in_market"]
    assert list(result.fills.columns) == ["timestamp", "side", "action", "price", "size", "pnl"]


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_appending_future_bars_never_changes_past_targets_or_fills(strategy: str) -> None:
    full = random_walk_candles(12_000, seed=5)
    chosen = get_strategy(strategy)
    params = chosen.make_params(None)
    all_targets = chosen.target_positions(full, params)
    epic, start_ns = get_epic("EURUSD"), int(full.timestamp[500])
    for cut in (3000, 7777, 11_999):
        past = full.take(slice(0, cut))
        assert np.array_equal(chosen.target_positions(past, params), all_targets[:cut])
        end_ns = int(full.timestamp[cut - 1]) + 1
        short = run_backtest(past, strategy=strategy, params=None, epic=epic,
                             start_ns=start_ns, end_ns=end_ns).fills
        longer = run_backtest(full, strategy=strategy, params=None, epic=epic,
                              start_ns=start_ns, end_ns=end_ns).fills
        pd.testing.assert_frame_equal(short, longer)
        everything = run_backtest(full, strategy=strategy, params=None, epic=epic,
                                  start_ns=start_ns, end_ns=int(full.timestamp[-1]) + 1).fills
        pd.testing.assert_frame_equal(everything[everything["timestamp"].astype("int64") < end_ns],
                                      short)


def _split_point(one_piece, candles: Candles, range_start: int, search_from: int) -> int:
    """First bar of a UTC day at or after ``search_from`` where the one-piece run holds a
    position across the bar's open (it was opened inside the range, after ``range_start``)."""
    positions = one_piece.simulation.positions  # index 0 is bar ``range_start``
    day = candles.timestamp // NS_PER_DAY
    for b in range(search_from, len(candles)):
        held, now = positions[b - range_start - 1], positions[b - range_start]
        if day[b] != day[b - 1] and held != 0 and now == held:
            return b
    raise AssertionError("no day start with an open position: change the seed")


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_a_range_in_one_piece_equals_two_parts_each_with_its_warm_up(strategy: str) -> None:
    candles = random_walk_candles(20_000, seed=21)
    epic = get_epic("GBPUSD")
    costs = CostModel.for_epic(epic, commission_per_lot=4.0, slippage_pips=0.3)
    chosen = get_strategy(strategy)
    warmup = chosen.warmup_bars(chosen.make_params(None))
    a = warmup + 100
    ts = candles.timestamp
    a_ns, c_ns = int(ts[a]), int(ts[-1]) + 1

    def run(lo: int, start_ns: int, end_ns: int):
        part = candles.between(int(ts[max(lo, 0)]), end_ns)
        return run_backtest(part, strategy=strategy, params=None, epic=epic, start_ns=start_ns,
                            end_ns=end_ns, costs=costs)

    whole = run(0, a_ns, c_ns)
    b = _split_point(whole, candles, a, a + 2000)
    first, second = run(a - warmup, a_ns, int(ts[b])), run(b - warmup, int(ts[b]), c_ns)
    assert first.end_position == second.simulation.positions[0] != 0  # carried across b
    assert second.fills["action"].iloc[0] == "CLOSE"  # its entry fill was in the warm-up
    split = pd.concat([first.fills, second.fills], ignore_index=True)
    pd.testing.assert_frame_equal(split, whole.fills, check_exact=False, rtol=0, atol=1e-9)
    assert np.array_equal(split["price"], whole.fills["price"])
    daily = pd.concat([first.daily, second.daily], ignore_index=True)
    pd.testing.assert_frame_equal(daily, whole.daily, check_exact=False, rtol=0, atol=1e-9)
    total = first.simulation.total_pnl + second.simulation.total_pnl
    assert total == pytest.approx(whole.simulation.total_pnl, abs=1e-9)
    # The report recomputes metrics from stored daily rows and trades: same numbers.
    again = compute_metrics(daily["pnl"], split.loc[split["action"] == "CLOSE", "pnl"],
                            capital=100_000, bars=int(daily["bars"].sum()),
                            bars_in_market=int(daily["bars_in_market"].sum()), days=daily["day"])
    assert again == pytest.approx(whole.metrics, rel=1e-9, abs=1e-12)
