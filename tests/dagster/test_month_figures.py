"""Each month of a multi-month run carries its own figures as metadata, equal to that month's
rows in the results database (SQLite and PostgreSQL); whole-run figures are labelled run_*."""

from __future__ import annotations

import pandas as pd
import pytest
from dagster import instance_for_test

from btpipeline.resources.market_data_store import MarketDataStore
from btpipeline.resources.results_database import ResultsDatabase
from btpipeline.strategies import month_figures
from tests.support.backtest_runs import partition_metadata, run_range

MONTHS = ["2024-01-01", "2024-02-01", "2024-03-01"]
CAPITAL = 250_000.0


#: Month metadata is rounded for people: P&L to the cent, fractions to 6 decimals.
ROUNDED_TO = {"pnl": 0.005, "return": 5e-7, "max_drawdown": 5e-7, "exposure": 5e-7}


def _own_figures(signals: pd.DataFrame, daily: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Each month's figures computed here, by hand, from its stored rows."""
    figures, equity = {}, CAPITAL
    for key in MONTHS:
        rows = daily[daily["partition_key"] == key].sort_values("day")
        closes = signals[(signals["partition_key"] == key) & (signals["action"] == "CLOSE")]
        peak, worst, level = equity, 0.0, equity
        for pnl in rows["pnl"]:
            level += pnl
            peak = max(peak, level)
            worst = max(worst, (peak - level) / peak)
        figures[key] = {"trades": len(closes), "pnl": rows["pnl"].sum(),
                        "return": rows["pnl"].sum() / equity, "max_drawdown": worst,
                        "exposure": rows["bars_in_market"].sum() / rows["bars"].sum()}
        equity = level
    return figures


def test_every_month_of_a_backfill_shows_its_own_rows(results_db: ResultsDatabase,
                                                      tmp_path) -> None:
    resources = {"market_data": MarketDataStore(root=str(tmp_path / "data")),
                 "results_db": results_db}
    with instance_for_test() as instance:
        result = run_range(instance, resources, MONTHS[0], MONTHS[-1], ["macd_crossover"],
                           backtest_config={"initial_capital": CAPITAL})
        assert result.success
        signals = results_db.read_signals(strategy="macd_crossover", epic="EURUSD")
        daily = results_db.read_daily_pnl(strategy="macd_crossover", epic="EURUSD")
        shown = {k: partition_metadata(instance, "macd_crossover", "EURUSD", k) for k in MONTHS}
    expected = _own_figures(signals, daily)
    for key in MONTHS:
        assert shown[key]["trades"] == expected[key]["trades"] > 0
        for name in ("pnl", "return", "max_drawdown", "exposure"):  # shown rounded (ROUNDED_TO)
            assert shown[key][name] == pytest.approx(expected[key][name], rel=0,
                                                     abs=ROUNDED_TO[name])
    # Not the same figure on every month (the flat line this replaced) ...
    assert len({shown[k]["pnl"] for k in MONTHS}) == len(MONTHS)
    # ... and the whole run's figures are labelled as such, equal to the execution row.
    execution = results_db.read_executions(strategy="macd_crossover", epic="EURUSD").iloc[0]
    for key in MONTHS:
        assert shown[key]["run_range"].startswith(f"{MONTHS[0]}..{MONTHS[-1]}")
        assert shown[key]["run_pnl"] == pytest.approx(execution["pnl"])
        assert shown[key]["run_total_return"] == pytest.approx(execution["total_return"])
        assert "total_return" not in shown[key]
    assert execution["pnl"] == pytest.approx(daily["pnl"].sum())


def test_a_month_without_rows_gets_zeros_and_keeps_the_equity() -> None:
    fills = pd.DataFrame({"action": ["CLOSE"], "partition_key": ["2024-03-01"]})
    daily = pd.DataFrame({"day": ["2024-01-02", "2024-03-04"], "pnl": [-100.0, 50.0],
                          "bars": [10, 10], "bars_in_market": [5, 10],
                          "partition_key": ["2024-01-01", "2024-03-01"]})
    got = month_figures(fills, daily, MONTHS, 1000.0)
    assert got["2024-02-01"] == {"trades": 0.0, "pnl": 0.0, "return": 0.0,
                                 "max_drawdown": 0.0, "exposure": 0.0}
    assert got["2024-01-01"]["max_drawdown"] == pytest.approx(0.1)
    assert got["2024-03-01"]["return"] == pytest.approx(50 / 900)  # on March's opening equity
    assert got["2024-03-01"]["trades"] == 1.0 and got["2024-03-01"]["exposure"] == 1.0
