"""Each month's own figures through the real `dagster asset materialize` on backtest_executor."""

from __future__ import annotations

import sys

import pytest
from dagster import DagsterInstance

from btpipeline.resources.results_database import ResultsDatabase
from tests.support import btpipeline, project_env, run
from tests.support.backtest_runs import partition_metadata

MONTHS = ["2024-01-01", "2024-02-01", "2024-03-01"]


@pytest.mark.slow
def test_months_keep_their_own_figures_through_the_backtest_executor(tmp_path) -> None:
    """The project's own executor (warm workers, batched events) in a real `dagster` process."""
    env = project_env(tmp_path)
    btpipeline("generate", "--epics", "EURUSD", "--start", "2023-12-01", "--end", "2024-03-31",
               env=env)
    run([sys.executable, "-m", "dagster", "asset", "materialize", "-m", "btpipeline.definitions",
         "--select", "backtest/ema_crossover/EURUSD",
         "--partition-range", "2024-01-01...2024-03-01"], env)
    db = ResultsDatabase(url=f"sqlite:///{tmp_path / 'btp' / 'results.db'}")
    daily = db.read_daily_pnl(strategy="ema_crossover", epic="EURUSD")
    instance = DagsterInstance.from_config(env["DAGSTER_HOME"])
    shown = {k: partition_metadata(instance, "ema_crossover", "EURUSD", k) for k in MONTHS}
    for key in MONTHS:
        own = daily.loc[daily["partition_key"] == key, "pnl"].sum()
        assert shown[key]["pnl"] == pytest.approx(own, rel=0, abs=0.005)  # shown to the cent
    assert len({shown[k]["pnl"] for k in MONTHS}) == len(MONTHS)
