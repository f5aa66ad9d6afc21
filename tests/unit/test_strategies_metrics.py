"""Metrics hand-checked on a tiny daily series."""

from __future__ import annotations

import math

import pytest

from btpipeline.errors import InvalidParameterError
from btpipeline.strategies import compute_metrics

DAILY = [10.0, -20.0, 30.0, -5.0]
TRADES = [15.0, -10.0, 25.0, -5.0, 0.0]


def metrics(daily=DAILY, trades=TRADES, bars=120, in_market=30) -> dict[str, float]:
    return compute_metrics(daily, trades, capital=1000.0, bars=bars, bars_in_market=in_market)


def test_returns_and_risk_ratios_by_hand() -> None:
    m = metrics()
    assert m["total_return"] == pytest.approx(0.015)
    # Returns are on account equity (this used to be P&L over a fixed capital): each day's
    # P&L over the equity at its start, 1000 1010 990 1020.
    r = [10 / 1000, -20 / 1010, 30 / 990, -5 / 1020]
    mean = sum(r) / 4
    std = math.sqrt(sum((x - mean) ** 2 for x in r) / 3)
    assert m["sharpe"] == pytest.approx(mean / std * math.sqrt(252))
    # downside deviation over all 4 days
    downside = math.sqrt(((20 / 1010) ** 2 + (5 / 1020) ** 2) / 4)
    assert m["sortino"] == pytest.approx(mean / downside * math.sqrt(252))
    # equity 1010 990 1020 1015: worst drop is 1010 -> 990
    assert m["max_drawdown"] == pytest.approx(20 / 1010)


def test_trade_statistics_and_exposure_by_hand() -> None:
    m = metrics()
    assert m["win_rate"] == pytest.approx(2 / 5)  # a 0.0 trade is not a win
    assert m["profit_factor"] == pytest.approx(40 / 15)
    assert m["expectancy"] == pytest.approx(5.0)
    assert m["num_trades"] == 5.0
    assert m["exposure"] == pytest.approx(0.25)
    assert all(isinstance(v, float) for v in m.values())


def test_drawdown_peak_starts_at_capital() -> None:
    assert metrics(daily=[-50.0, 20.0])["max_drawdown"] == pytest.approx(50 / 1000)
    assert metrics(daily=[5.0, 5.0])["max_drawdown"] == 0.0


def test_undefined_values_are_zero_and_all_winners_give_infinite_profit_factor() -> None:
    empty = compute_metrics([], [], capital=1000.0, bars=0, bars_in_market=0)
    assert empty == {"total_return": 0.0, "sharpe": 0.0, "sortino": 0.0, "max_drawdown": 0.0,
                     "win_rate": 0.0, "profit_factor": 0.0, "expectancy": 0.0,
                     "num_trades": 0.0, "exposure": 0.0, "pnl": 0.0}
    one_day = metrics(daily=[12.0], trades=[3.0, 4.0])
    assert one_day["sharpe"] == 0.0 and one_day["sortino"] == 0.0
    assert one_day["profit_factor"] == math.inf
    # zero dispersion (equal P&L no longer means equal returns: equity grows in between)
    assert metrics(daily=[0.0, 0.0])["sharpe"] == 0.0
    assert metrics(daily=[1.0, 2.0])["sortino"] == 0.0  # no losing day


def test_capital_must_be_positive() -> None:
    with pytest.raises(InvalidParameterError, match="'capital'"):
        compute_metrics([1.0], [], capital=0.0, bars=1, bars_in_market=0)
