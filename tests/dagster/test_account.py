"""The account: a blow-up that stops trading, a JPY-quoted pair's P&L in the account currency,
Sharpe over trading days (hand-computed), and the filled ``backtest_executions.pnl`` - through
real Dagster runs on SQLite and PostgreSQL results databases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from dagster import instance_for_test

from btpipeline.epics import get_epic
from btpipeline.errors import InvalidParameterError
from btpipeline.resources.market_data_store import MarketDataStore
from btpipeline.resources.results_database import ResultsDatabase
from btpipeline.strategies import Account, compute_metrics, run_backtest
from btpipeline.strategies.metrics import trading_days
from tests.support.backtest_runs import partition_metadata, run_range
from tests.unit.test_strategies_reference import random_walk_candles

MONTHS = ["2024-01-01", "2024-02-01", "2024-03-01"]


@pytest.fixture
def resources(results_db: ResultsDatabase, tmp_path) -> dict:
    return {"market_data": MarketDataStore(root=str(tmp_path / "data")), "results_db": results_db}


def test_sharpe_counts_trading_days_with_the_sunday_stub_in_monday() -> None:
    days = ["2024-01-05", "2024-01-07", "2024-01-08", "2024-01-09"]  # Fri, Sun stub, Mon, Tue
    m = compute_metrics([100.0, 10.0, -50.0, 200.0], [], capital=10_000.0, bars=4,
                        bars_in_market=4, days=days)
    # Three trading days: Fri +100, Mon (Sunday's +10 and Monday's -50) -40, Tue +200, each over
    # the equity at its start: 10,000, 10,100, 10,060.
    r = [0.01, -40 / 10_100, 200 / 10_060]
    mean = (0.01 - 0.0039603960396039604 + 0.019880715705765408) / 3
    assert sum(r) / 3 == pytest.approx(mean)
    std = math.sqrt(sum((x - mean) ** 2 for x in r) / 2)
    assert m["sharpe"] == pytest.approx(mean / std * math.sqrt(252), rel=1e-12)
    assert m["sharpe"] == pytest.approx(11.4502, abs=1e-4)  # 0.0086401 / 0.0119786 * 15.8745
    downside = math.sqrt((40 / 10_100) ** 2 / 3)
    assert m["sortino"] == pytest.approx(mean / downside * math.sqrt(252), rel=1e-12)
    assert m["pnl"] == 260.0 and m["total_return"] == pytest.approx(0.026)
    assert list(trading_days(["2024-01-06", "2024-01-07"]).astype(str)) == ["2024-01-08"] * 2


def test_a_cross_without_the_account_currency_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="Fix: use a USD or EUR account"):
        Account(currency="GBP").check_pair(get_epic("EURUSD"))
    with pytest.raises(InvalidParameterError, match="stop_out_level"):
        Account(stop_out_level=1.5)


def _sharpe_by_hand(daily: pd.DataFrame, capital: float) -> float:
    """Independent of metrics.py: pandas moves weekend dates to the next Monday."""
    day = pd.to_datetime(daily["day"])
    weekday = day.dt.day_of_week
    trading = day + pd.to_timedelta(np.where(weekday >= 5, 7 - weekday, 0), "D")
    pnl = daily.groupby(trading.to_numpy())["pnl"].sum().sort_index()
    returns = pnl / (capital + pnl.cumsum().shift(fill_value=0.0))
    return float(returns.mean() / returns.std(ddof=1) * math.sqrt(252))


def test_sharpe_and_pnl_of_a_run_are_over_trading_days_of_account_equity(resources) -> None:
    with instance_for_test() as instance:
        assert run_range(instance, resources, MONTHS[0], MONTHS[-1], ["ema_crossover"]).success
    db = resources["results_db"]
    daily = db.read_daily_pnl(strategy="ema_crossover", epic="EURUSD").sort_values("day")
    weekdays = pd.to_datetime(daily["day"]).dt.day_of_week
    assert (weekdays == 6).sum() >= 12  # the synthetic data opens every week on Sunday 22:00
    row = db.read_executions(strategy="ema_crossover", epic="EURUSD").iloc[0]
    assert row["sharpe"] == pytest.approx(_sharpe_by_hand(daily, 100_000.0), rel=1e-9)
    assert row["pnl"] == pytest.approx(daily["pnl"].sum())  # no longer always empty
    assert row["total_return"] == pytest.approx(daily["pnl"].sum() / 100_000.0)
    assert row["params"]["account"] == {"initial_capital": 100_000.0, "currency": "USD",
                                        "stop_out_level": 0.0, "sizing": "units 100000",
                                        "stopped_out_at": None}


def test_an_account_that_blows_up_stops_trading_and_says_so(resources) -> None:
    # 100,000 EURUSD units on 20,000 USD (5x), always in on 1-minute MACD crossovers: the
    # spread alone halves the account by mid-January.
    config = {"initial_capital": 20_000.0, "size_units": 100_000.0, "stop_out_level": 0.5}
    with instance_for_test() as instance:
        result = run_range(instance, resources, MONTHS[0], MONTHS[-1], ["macd_crossover"],
                           backtest_config=config)
        assert result.success
        meta = {k: partition_metadata(instance, "macd_crossover", "EURUSD", k) for k in MONTHS}
    db = resources["results_db"]
    row = db.read_executions(strategy="macd_crossover", epic="EURUSD").iloc[0]
    stopped = pd.Timestamp(row["params"]["account"]["stopped_out_at"])
    assert MONTHS[0] < str(stopped.date()) < MONTHS[1]
    assert meta[MONTHS[-1]]["run_stopped_out_at"] == stopped.isoformat()
    signals = db.read_signals(strategy="macd_crossover", epic="EURUSD")
    after = signals[signals["timestamp"] > stopped]
    # One fill after the stop: the open position closed at the next bar's open; then nothing.
    assert list(after["action"]) == ["CLOSE"]
    assert after["timestamp"].iloc[0] - stopped == pd.Timedelta(minutes=1)
    daily = db.read_daily_pnl(strategy="macd_crossover", epic="EURUSD").sort_values("day")
    day = pd.to_datetime(daily["day"]).dt.tz_localize("UTC")
    equity = 20_000.0 + daily["pnl"].cumsum()
    assert equity[day < stopped.normalize()].min() > 10_000.0
    assert 0.0 < equity.iloc[-1] <= 10_000.0
    assert daily.loc[day > stopped.normalize() + pd.Timedelta(days=1), "pnl"].eq(0.0).all()
    assert daily.loc[day > stopped.normalize() + pd.Timedelta(days=1), "bars_in_market"].eq(
        0).all()
    assert meta[MONTHS[1]]["trades"] == 0 and meta[MONTHS[2]]["pnl"] == 0.0
    assert row["max_drawdown"] >= 0.5 and row["total_return"] <= -0.5


def test_a_jpy_quoted_pair_reports_its_pnl_in_the_account_currency(resources) -> None:
    with instance_for_test() as instance:
        assert run_range(instance, resources, MONTHS[0], MONTHS[0], ["ema_crossover"],
                         epic="USDJPY").success
    db = resources["results_db"]
    fills = db.read_signals(strategy="ema_crossover", epic="USDJPY").sort_values(
        ["timestamp", "seq"]).reset_index(drop=True)
    pairs = [(fills.iloc[i - 1], fills.iloc[i]) for i in range(1, len(fills))
             if fills["action"].iloc[i] == "CLOSE" and fills["action"].iloc[i - 1] == "OPEN"]
    assert len(pairs) > 20
    for entry, exit_ in pairs:
        direction = 1.0 if entry["side"] == "BUY" else -1.0
        jpy = direction * exit_["size"] * (exit_["price"] - entry["price"])
        assert exit_["pnl"] == pytest.approx(jpy / exit_["price"], rel=1e-9)  # JPY -> USD
    closes = fills.loc[fills["action"] == "CLOSE", "pnl"]
    row = db.read_executions(strategy="ema_crossover", epic="USDJPY").iloc[0]
    assert row["expectancy"] == pytest.approx(closes.mean())
    # USD-sized amounts: 100,000 USD of a ~150 pair moves a few hundred USD a day, not yen.
    daily = db.read_daily_pnl(strategy="ema_crossover", epic="USDJPY")
    assert daily["pnl"].abs().max() < 5_000


def test_fraction_of_equity_sizes_each_position_on_the_equity_before_it() -> None:
    candles, epic = random_walk_candles(8_000, seed=9), get_epic("EURUSD")
    lo = 3_000
    kwargs = dict(strategy="rsi_mean_reversion", params=None, epic=epic,
                  start_ns=int(candles.timestamp[lo]), end_ns=int(candles.timestamp[-1]) + 1)
    fixed = run_backtest(candles, **kwargs)
    sized = run_backtest(candles, equity_fraction=3.0, **kwargs)
    # The same trades (when, which way, at what price); only the sizes differ.
    for column in ("timestamp", "side", "action", "price"):
        assert list(sized.fills[column]) == list(fixed.fills[column])
    assert sized.fills["size"].nunique() > 5
    equity = 100_000.0 + np.cumsum(sized.simulation.bar_pnl)  # EURUSD: USD P&L as it is
    bar_of = {int(t): i for i, t in enumerate(sized.simulation.timestamps)}
    opens = sized.fills[sized.fills["action"] == "OPEN"]
    checked = 0
    for _, fill in opens.iterrows():
        i = bar_of[int(fill["timestamp"].value)]
        if i == 0:
            continue
        expected = 3.0 * equity[i - 1] / float(candles.open[lo + i])  # notional 3x equity
        assert fill["size"] == pytest.approx(expected, rel=1e-12)
        checked += 1
    assert checked > 20
    fills = sized.fills.reset_index(drop=True)
    for j in range(1, len(fills)):  # a trade closes with the size it opened with
        if fills["action"].iloc[j] == "CLOSE" and fills["action"].iloc[j - 1] == "OPEN":
            assert fills["size"].iloc[j] == fills["size"].iloc[j - 1]
    with pytest.raises(InvalidParameterError, match="equity_fraction"):
        run_backtest(candles, equity_fraction=0.0, **kwargs)


def test_sizing_by_equity_fraction_through_dagster(resources) -> None:
    config = {"sizing": "equity_fraction", "equity_fraction": 2.0}
    with instance_for_test() as instance:
        assert run_range(instance, resources, MONTHS[0], MONTHS[0], ["rsi_mean_reversion"],
                         backtest_config=config).success
    db = resources["results_db"]
    fills = db.read_signals(strategy="rsi_mean_reversion", epic="EURUSD")
    assert fills["size"].nunique() > 5 and fills["size"].max() < 2 * 100_000 / 0.9
    row = db.read_executions(strategy="rsi_mean_reversion", epic="EURUSD").iloc[0]
    assert row["params"]["account"]["sizing"] == "equity_fraction 2"
