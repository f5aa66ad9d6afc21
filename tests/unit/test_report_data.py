"""The report's data, gathered from rows the real ResultsDatabase writer stored (SQLite and
PostgreSQL, see conftest ``results_db``): one calendar, account equity and drawdown, monthly
returns, trades paired from the fills, metrics, params, costs and data range."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from btpipeline.epics import EPICS
from btpipeline.reports import PORTFOLIO, gather_report_data
from btpipeline.reports.drawdowns import drawdown_periods
from btpipeline.reports.html import render_html
from btpipeline.reports.markdown import (
    INLINE_LIMIT,
    MAX_LINE,
    SHOWN_METRICS,
    asset_markdown,
    chart_markdown,
    metrics_markdown,
)
from btpipeline.resources.results_database import ResultsDatabase

STRATEGY = "macd_crossover"
CAPITAL = 50_000.0
T0 = dt.datetime(2024, 4, 1, 12, 0, tzinfo=dt.timezone.utc)
PARAMS = {"fast": 8, "slow": 21, "signal": 5}


def _daily(days: list[str], pnl: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"day": days, "pnl": pnl, "bars": 1440, "bars_in_market": 600,
                         "partition_key": [d[:7] + "-01" for d in days]})


def _fills(stamps: list[str], actions: list[str], sides: list[str]) -> pd.DataFrame:
    times = pd.to_datetime(stamps, utc=True)
    n = len(stamps)
    return pd.DataFrame({
        "timestamp": times, "side": sides, "action": actions,
        "price": 1.1 + np.arange(n) * 1e-3, "size": 100_000.0,
        "pnl": [np.nan if a == "OPEN" else 10.0 * (i + 1) - 35 for i, a in enumerate(actions)],
        "partition_key": times.strftime("%Y-%m-01"),
    })


def _write(db: ResultsDatabase, epic: str, daily: pd.DataFrame, fills: pd.DataFrame) -> None:
    db.write_backtest(strategy=STRATEGY, epic=epic,
                      partition_keys=sorted(set(daily["partition_key"])), run_id="run-1",
                      params=PARAMS, started_at=T0, finished_at=T0, metrics={"sharpe": 1.0},
                      fills=fills, daily=daily)


# EURUSD: Jan and Feb; its first fill is a CLOSE whose OPEN was in the warm-up.
EUR_DAILY = _daily(["2024-01-02", "2024-01-03", "2024-02-01"], [100.0, -300.0, 50.0])
EUR_FILLS = _fills(
    ["2024-01-02 09:00", "2024-01-02 10:00", "2024-01-03 11:00", "2024-01-03 11:00",
     "2024-02-01 15:30"],
    ["CLOSE", "OPEN", "CLOSE", "OPEN", "CLOSE"], ["SELL", "BUY", "SELL", "SELL", "BUY"])
# USDJPY: Feb and Mar, P&L in JPY (converted to USD at the catalogue rate, 150).
JPY_DAILY = _daily(["2024-02-01", "2024-02-05", "2024-03-04"], [1500.0, -3000.0, 750.0])
JPY_FILLS = _fills(["2024-02-01 08:00", "2024-02-05 16:00"], ["OPEN", "CLOSE"], ["SELL", "BUY"])


@pytest.fixture
def stored(results_db: ResultsDatabase) -> ResultsDatabase:
    _write(results_db, "EURUSD", EUR_DAILY, EUR_FILLS)
    _write(results_db, "USDJPY", JPY_DAILY, JPY_FILLS)
    return results_db


def _gather(db: ResultsDatabase):
    return gather_report_data(db, STRATEGY, ["EURUSD", "GBPUSD", "USDJPY"], capital=CAPITAL)


def test_daily_pnl_is_on_one_calendar_with_zero_for_missing_days(stored: ResultsDatabase) -> None:
    data = _gather(stored)
    assert data.instruments == ["EURUSD", "USDJPY"]  # GBPUSD has no stored results
    days = sorted(set(EUR_DAILY["day"]) | set(JPY_DAILY["day"]))
    assert [d.strftime("%Y-%m-%d") for d in data.daily_pnl.index] == days
    assert data.daily_pnl.loc["2024-01-02", "USDJPY"] == 0.0
    assert data.daily_pnl.loc["2024-03-04", "EURUSD"] == 0.0
    assert data.daily_pnl.loc["2024-02-01"].tolist() == [50.0, 10.0]  # 1500 JPY / 150
    assert data.daily_pnl["USDJPY"].sum() == pytest.approx(JPY_DAILY["pnl"].sum() / 150)


def test_equity_starts_at_capital_and_drawdown_is_never_positive(stored: ResultsDatabase
                                                                 ) -> None:
    data = _gather(stored)
    assert list(data.equity.columns) == ["EURUSD", "USDJPY", PORTFOLIO]
    assert (data.equity.iloc[0] == CAPITAL).all()
    assert data.equity.index[0] == pd.Timestamp("2024-01-01")  # the day before the first day
    total = data.daily_pnl.sum()
    assert data.equity.iloc[-1, :2].tolist() == pytest.approx((CAPITAL + total).tolist())
    assert data.equity.iloc[-1][PORTFOLIO] == pytest.approx(CAPITAL + total.sum())
    assert (data.drawdown.to_numpy() <= 0).all()
    # EURUSD: +100 then -300 from the 50,100 peak.
    assert data.drawdown["EURUSD"].min() == pytest.approx(-300 / 50_100)
    assert data.metrics.loc["EURUSD", "max_drawdown"] == pytest.approx(300 / 50_100)


def test_monthly_returns_sum_to_the_total_return(stored: ResultsDatabase) -> None:
    data = _gather(stored)
    assert list(data.monthly_returns.index) == ["2024-01", "2024-02", "2024-03"]
    for column in data.monthly_returns.columns:
        assert data.monthly_returns[column].sum() == pytest.approx(
            data.metrics.loc[column, "total_return"])
    assert data.monthly_returns.loc["2024-01", "EURUSD"] == pytest.approx(-200 / CAPITAL)


def test_trades_pair_each_close_with_its_open(stored: ResultsDatabase) -> None:
    data = _gather(stored)
    closes = pd.concat([stored.read_signals(strategy=STRATEGY, epic=e) for e in data.instruments])
    closes = closes[closes["action"] == "CLOSE"].sort_values("timestamp")
    trades = data.trades
    assert len(trades) == len(closes) == 4
    assert trades["exit_time"].tolist() == closes["timestamp"].tolist()
    assert trades["exit_price"].tolist() == closes["price"].tolist()
    first = trades.iloc[0]  # its OPEN was before the stored range
    assert pd.isna(first["entry_time"]) and np.isnan(first["entry_price"])
    assert first["side"] == "LONG" and first["pnl"] == -25.0
    second = trades.iloc[1]  # OPEN BUY 10:00, CLOSE SELL 2024-01-03 11:00
    assert second["side"] == "LONG"
    assert second["entry_time"] == pd.Timestamp("2024-01-02 10:00", tz="UTC")
    assert second["entry_price"] == pytest.approx(1.101)
    assert second["duration"] == pd.Timedelta(hours=25)
    jpy = trades[trades["instrument"] == "USDJPY"].iloc[0]
    assert jpy["side"] == "SHORT" and jpy["pnl"] == pytest.approx(-15.0 / 150)
    assert data.metrics.loc[PORTFOLIO, "num_trades"] == 4


def test_params_costs_and_data_range_come_from_the_stored_rows(stored: ResultsDatabase) -> None:
    data = _gather(stored)
    assert data.params == {"EURUSD": PARAMS, "USDJPY": PARAMS}
    assert data.common_params() == PARAMS
    assert data.costs["USDJPY"]["spread_pips"] == EPICS["USDJPY"].spread_pips
    eur = data.data_range["EURUSD"]
    assert (eur.first_day, eur.last_day, eur.months, eur.days) == ("2024-01-02", "2024-02-01", 2, 3)
    assert (data.data_range["USDJPY"].first_month, data.data_range["USDJPY"].last_month) == (
        "2024-02", "2024-03")
    assert data.metrics.loc["USDJPY", "months"] == 2


def test_no_stored_results_gives_an_empty_report(results_db: ResultsDatabase) -> None:
    data = gather_report_data(results_db, STRATEGY, ["EURUSD"])
    assert data.empty and data.trades.empty
    assert "No stored results for macd_crossover" in metrics_markdown(data)
    assert set(asset_markdown(data)) == {"metrics", "details"}


def test_asset_markdown_stays_inline_and_narrow_with_every_pair(results_db: ResultsDatabase
                                                                 ) -> None:
    """Six pairs, two years: each entry still renders inline in Dagster (< 1,000 chars)."""
    days = pd.date_range("2023-01-01", "2024-12-31").strftime("%Y-%m-%d").tolist()
    noise = np.random.default_rng(3).normal(0, 400, len(days))
    for i, epic in enumerate(EPICS):
        _write(results_db, epic, _daily(days, (noise * (i + 1) - 12_345.678 * i).tolist()),
               _fills(["2024-01-02 09:00", "2024-01-02 10:00"], ["OPEN", "CLOSE"],
                      ["BUY", "SELL"]))
    data = gather_report_data(results_db, STRATEGY, list(EPICS))
    parts = asset_markdown(data)
    assert {k: len(v) < INLINE_LIMIT for k, v in parts.items()} == dict.fromkeys(
        ["metrics", "details", "equity_drawdown"], True), {k: len(v) for k, v in parts.items()}
    lines = parts["metrics"].strip().splitlines()
    assert len(lines) == 2 + len(SHOWN_METRICS)
    assert lines[0].count("|") == 2 + len(EPICS) + 1  # label + 6 pairs + portfolio
    assert max(len(line) for line in lines) <= MAX_LINE, parts["metrics"]
    assert parts["equity_drawdown"].startswith("![macd_crossover portfolio equity")
    assert "(data:image/svg+xml,%3Csvg" in parts["equity_drawdown"]
    assert "fast=8, signal=5, slow=21" in parts["details"]
    assert "2023-01-01 .. 2024-12-31 (24 months)" in parts["details"]
    assert chart_markdown(data).startswith("![macd_crossover equity and drawdown](data:image/png")


def test_drawdown_periods_start_at_the_peak_and_end_when_it_is_regained() -> None:
    days = pd.date_range("2024-01-01", periods=10)
    drawdown = pd.Series([0, -0.1, -0.3, 0, 0, -0.05, 0, -0.2, -0.1, -0.15], index=days)
    periods = drawdown_periods(drawdown, top=2)
    assert periods["depth"].tolist() == [-0.3, -0.2]
    deepest, open_ = periods.iloc[0], periods.iloc[1]
    assert (deepest["start"], deepest["valley"], deepest["end"], deepest["days"]) == (
        days[0], days[2], days[3], 3)
    assert open_["start"] == days[6] and pd.isna(open_["end"])  # still under water
    assert drawdown_periods(pd.Series(0.0, index=days)).empty


def test_portfolio_drawdown_periods_of_stored_results(stored: ResultsDatabase) -> None:
    data = _gather(stored)
    periods = drawdown_periods(data.drawdown[PORTFOLIO])
    assert periods.iloc[0]["depth"] == pytest.approx(data.drawdown[PORTFOLIO].min())
    assert -periods.iloc[0]["depth"] == pytest.approx(data.metrics.loc[PORTFOLIO, "max_drawdown"])


def test_the_report_package_imports_no_dagster() -> None:
    code = ("import sys, btpipeline.reports.build, btpipeline.reports.markdown; "
            "sys.exit('dagster' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


def test_one_flat_day_without_trades_still_renders(results_db: ResultsDatabase) -> None:
    empty_fills = _fills([], [], [])
    _write(results_db, "EURUSD", _daily(["2024-01-02"], [0.0]), empty_fills)
    data = gather_report_data(results_db, STRATEGY, ["EURUSD"])
    assert data.trades.empty and (data.drawdown.to_numpy() == 0).all()
    page = render_html(data)
    assert "Trades (0;" in page and page.count("<img") == 2
    assert all(len(v) < INLINE_LIMIT for v in asset_markdown(data).values())


def test_account_era_rows_keep_their_currency_capital_and_timeframe(results_db: ResultsDatabase
                                                                    ) -> None:
    """Rows that carry the account (P&L already in USD) are not converted again."""
    account = {"initial_capital": 25_000.0, "currency": "USD", "stop_out_level": 0.0,
               "sizing": "units", "stopped_out_at": "2024-02-05T16:00:00+00:00"}
    results_db.write_backtest(
        strategy=STRATEGY, epic="USDJPY", partition_keys=["2024-02-01", "2024-03-01"],
        run_id="run-2", params={**PARAMS, "timeframe": "H1", "account": account},
        started_at=T0, finished_at=T0, metrics={}, fills=JPY_FILLS, daily=JPY_DAILY)
    data = gather_report_data(results_db, STRATEGY, ["USDJPY"])
    assert data.capital == 25_000.0 and data.currency == "USD" and data.timeframe == "H1"
    assert data.params == {"USDJPY": PARAMS}
    assert data.daily_pnl["USDJPY"].sum() == pytest.approx(JPY_DAILY["pnl"].sum())
    assert data.trades["pnl"].tolist() == [-15.0]
    assert data.notes == ["USDJPY: stopped out at 2024-02-05T16:00:00+00:00"]
    details = asset_markdown(data)["details"]
    assert "**timeframe**: H1; **capital**: 25,000 USD" in details
    assert "stopped out at" in render_html(data)
