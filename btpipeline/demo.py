"""``btpipeline demo``: sample data in, a partition-range backfill through Dagster, reports out.

Runs on the instance in ``DAGSTER_HOME`` (the project's ``.dagster_home`` by default), so the
runs, materializations and reports it makes are there when ``dagster dev`` opens the UI.
"""

from __future__ import annotations

import datetime as dt
import time

from dagster import DagsterInstance, execute_job, reconstructable

from btpipeline import universe
from btpipeline.assets.keys import backtest_key, candles_key, report_key
from btpipeline.definitions import market_data_job_def, reports_job_def
from btpipeline.epics import get_epic
from btpipeline.machine.naming import month_key
from btpipeline.machine.tags import RANGE_END_TAG, RANGE_START_TAG
from btpipeline.reports.text import build_report, render_text
from btpipeline.resources.results_database import ResultsDatabase
from btpipeline.strategies import get_strategy
from btpipeline.validation import check_date_range

# The demo prints its own summary; the run's full logs are in the UI.
READING_THE_NUMBERS = (
    "Reading these numbers: the demo's candles are synthetic, a random walk with no edge to "
    "find. Strategies that are always in the market (the crossovers) pay the spread on every "
    "reversal and lose it steadily; that loss is the expected result, not a bug. Returns are "
    "on a 100,000 USD account per strategy x epic (README: Account and metrics).")
ON_REAL_DATA = (
    "On real data: import your 1-minute bars (`btpipeline import FILE --epic EURUSD`, "
    "HistData or a headed CSV), backtest the imported months (`dagster asset materialize -m "
    "btpipeline.definitions --select 'backtest/macd_crossover/EURUSD' --partition-range "
    "2023-01-01...2023-12-01`, or Materialize in the UI), then `btpipeline report --text`: the "
    "same tables, now the strategies' record on that market, costs included.")
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _candles_config(epics: list[str]) -> dict:
    return {**QUIET, "ops": {candles_key(e).to_python_identifier():
                             {"config": {"generate_if_missing": True}} for e in epics}}


def backfill(instance: DagsterInstance, strategies: list[str], epics: list[str],
             start: dt.date, end: dt.date) -> bool:
    """One run over the partition range: candles (generated if missing), then backtests."""
    selection = [candles_key(e) for e in epics] + [backtest_key(s, e) for s in strategies
                                                    for e in epics]
    tags = {RANGE_START_TAG: month_key(start), RANGE_END_TAG: month_key(end),
            "btpipeline/source": "demo"}
    with execute_job(reconstructable(market_data_job_def), instance=instance, tags=tags,
                     run_config=_candles_config(epics), asset_selection=selection) as result:
        return result.success


def rebuild_reports(instance: DagsterInstance, strategies: list[str]) -> bool:
    with execute_job(reconstructable(reports_job_def), instance=instance, run_config=QUIET,
                     asset_selection=[report_key(s) for s in strategies]) as result:
        return result.success


def run_demo(strategies: list[str] | None, epics: list[str], start: dt.date, end: dt.date) -> int:
    strategies = strategies or universe.strategies()
    for name in strategies:
        get_strategy(name)
    for name in epics:
        get_epic(name)
    check_date_range(start, end)
    began = time.perf_counter()
    instance = DagsterInstance.get()
    print(f"Backfilling {len(strategies)} strategies x {len(epics)} epics over "
          f"{month_key(start)}..{month_key(end)} on the Dagster instance at "
          f"{instance.root_directory}")
    if not backfill(instance, strategies, epics, start, end):
        print("The backfill run failed: open it in the UI (see below) or read its logs above.")
        return 1
    if not rebuild_reports(instance, strategies):
        print("The report run failed: see its logs above.")
        return 1
    db = ResultsDatabase()
    for strategy in strategies:
        print(render_text(build_report(db, strategy, epics)), end="\n\n")
    print(READING_THE_NUMBERS + "\n")
    print(ON_REAL_DATA + "\n")
    print(f"Demo finished in {time.perf_counter() - began:.1f} s.\n"
          "Open it in the Dagster UI:\n"
          "  export DAGSTER_HOME=$PWD/.dagster_home && dagster dev -w workspace.yaml\n"
          f"  then http://127.0.0.1:3000/assets/report/{strategies[0]} "
          "(metrics table and equity curve)")
    return 0
