"""Parameter sweeps: the fan-out job run for real on backtest_executor (execute_job, a
temporary instance, one month of synthetic candles in a tmp store). Grid validation without
Dagster: tests/unit/test_sweep_grid.py."""

import datetime as dt
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    JobExecutionResult,
    execute_job,
    instance_for_test,
    reconstructable,
)

from btpipeline.data.store import CandleStore, generate_into_store
from btpipeline.definitions import sweep_job_def
from btpipeline.epics import get_epic
from btpipeline.executors import backtest_executor
from btpipeline.resources.market_data_store import MarketDataStore
from btpipeline.strategies import CostModel, get_strategy, run_backtest
from btpipeline.sweeps.spec import METRICS

# tmpfs when there is one: Dagster's SQLite event log fsyncs every event.
SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") else None
GRID = {"fast": [8, 12, 16], "slow": [21, 26], "signal": [9]}  # 6 combinations
START, END = "2024-01-01", "2024-01-31"
SPREAD_PIPS, COMMISSION = 1.0, 3.5


# ---------------------------------------------------------------- the job, for real


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """January 2024 plus December 2023 for the indicators' warm-up."""
    root = tmp_path_factory.mktemp("sweep_data")
    generate_into_store(CandleStore(root), ["EURUSD"], dt.date(2023, 12, 1),
                        dt.date(2024, 1, 31), seed=7)
    return root


@pytest.fixture(scope="module")
def instance() -> Iterator[DagsterInstance]:
    with tempfile.TemporaryDirectory(dir=SCRATCH) as home:
        with instance_for_test(temp_dir=home) as inst:
            yield inst


def _run_config(data_root: Path, **sweep: Any) -> dict[str, Any]:
    config = {"start_date": START, "end_date": END, "grid": GRID, "spread_pips": SPREAD_PIPS,
              "commission_per_lot": COMMISSION, "rank_by": "total_return", "top_n": 3, **sweep}
    return {"ops": {"plan_sweep": {"config": config}},
            "resources": {"market_data": {"config": {"root": str(data_root)}}},
            "execution": {"config": {"max_concurrent_backtests": 2,
                                     "execution_mode": "STANDALONE"}}}


def _steps(instance: DagsterInstance, run_id: str, event_type: DagsterEventType) -> set[str]:
    return {r.dagster_event.step_key for r in instance.all_logs(run_id, of_type=event_type)}


def _failure(instance: DagsterInstance, run_id: str) -> str:
    [event] = instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE)
    assert event.dagster_event.step_key == "plan_sweep"
    return event.dagster_event.step_failure_data.error.message


@pytest.fixture(scope="module")
def sweep(instance: DagsterInstance, data_root: Path) -> Iterator[tuple[JobExecutionResult,
                                                                         pd.DataFrame]]:
    with execute_job(reconstructable(sweep_job_def), instance=instance,
                     run_config=_run_config(data_root), raise_on_error=False) as result:
        table = result.output_for_node("rank_sweep") if result.success else pd.DataFrame()
        yield result, table


def _direct(data_root: Path, params: dict[str, int]) -> dict[str, float]:
    """The same backtest without Dagster: read with the warm-up, run_backtest."""
    strategy = get_strategy("macd_crossover")
    start_ns = int(pd.Timestamp(START, tz="UTC").value)
    end_ns = int(pd.Timestamp(END, tz="UTC").value) + 86_400 * 10**9
    candles = MarketDataStore(root=str(data_root)).read_range(
        epic="EURUSD", start_ns=start_ns, end_ns=end_ns,
        warmup_bars=strategy.warmup_bars(strategy.make_params(params)))
    epic = get_epic("EURUSD")
    result = run_backtest(candles, strategy="macd_crossover", params=params, epic=epic,
                          start_ns=start_ns, end_ns=end_ns,
                          costs=CostModel.for_epic(epic, spread_pips=SPREAD_PIPS,
                                                   commission_per_lot=COMMISSION))
    return {**result.metrics, "fills": float(len(result.fills))}


def test_the_registered_job_runs_on_backtest_executor() -> None:
    assert sweep_job_def().executor_def is backtest_executor


def test_the_sweep_fans_out_one_step_per_combination(instance: DagsterInstance,
                                                     sweep: tuple[JobExecutionResult,
                                                                  pd.DataFrame]) -> None:
    result, _ = sweep
    failures = [e.step_failure_data.error.message[:600] for e in result.all_events
                if e.event_type == DagsterEventType.STEP_FAILURE]
    assert result.success, failures
    succeeded = _steps(instance, result.run_id, DagsterEventType.STEP_SUCCESS)
    mapped = {key for key in succeeded if key.startswith("backtest_combination[")}
    assert len(mapped) == 6
    assert "backtest_combination[c0000_fast8_slow21_signal9]" in mapped
    assert {"plan_sweep", "rank_sweep"} <= succeeded
    in_workers = [r for r in instance.all_logs(result.run_id, of_type=DagsterEventType.ENGINE_EVENT)
                  if r.dagster_event.step_key in mapped and "ran in worker" in r.user_message]
    assert len(in_workers) == 6


def test_every_combination_equals_a_direct_run_backtest(
        data_root: Path, sweep: tuple[JobExecutionResult, pd.DataFrame]) -> None:
    result, table = sweep
    assert result.success
    assert len(table) == 6 and list(table["rank"]) == [1, 2, 3, 4, 5, 6]
    for row in table.to_dict("records"):
        params = {"fast": row["fast"], "slow": row["slow"], "signal": row["signal"]}
        direct = _direct(data_root, params)
        assert direct["num_trades"] > 50
        for metric in (*METRICS, "fills"):
            assert row[metric] == direct[metric], (params, metric)


def test_results_are_ranked_and_the_top_is_markdown_metadata(
        instance: DagsterInstance, sweep: tuple[JobExecutionResult, pd.DataFrame]) -> None:
    result, table = sweep
    assert result.success
    assert table["total_return"].is_monotonic_decreasing
    [output] = [e for e in result.all_events
                if e.event_type == DagsterEventType.STEP_OUTPUT and e.step_key == "rank_sweep"]
    metadata = output.step_output_data.metadata
    top = metadata["top"].value
    assert top.startswith("| rank | fast | slow | signal | total_return |")
    assert len(top.splitlines()) == 2 + 3  # header, rule, top_n rows
    best = table.iloc[0]
    assert f"| 1 | {best['fast']} | {best['slow']} | 9 |" in top
    assert metadata["combinations"].value == 6
    assert metadata["best"].value["combination"] == best["combination"]


@pytest.mark.parametrize(("grid", "expected"), [
    ({"fast": [8], "slowest": [26]}, ["'slowest'", "fast, slow, signal", "Fix:"]),
    ({"fast": [12, 26], "slow": [26]}, ["fast < slow", "skip_invalid", "Fix:"]),
])
def test_a_bad_grid_fails_the_plan_before_any_backtest_step(
        instance: DagsterInstance, data_root: Path, grid: dict[str, list[int]],
        expected: list[str]) -> None:
    with execute_job(reconstructable(sweep_job_def), instance=instance,
                     run_config=_run_config(data_root, grid=grid),
                     raise_on_error=False) as result:
        assert not result.success
        message = _failure(instance, result.run_id)
        started = _steps(instance, result.run_id, DagsterEventType.STEP_START)
    assert "InvalidParameterError: Invalid sweep grid" in message
    for text in expected:
        assert text in message, message
    assert started == {"plan_sweep"}
    retries = instance.all_logs(result.run_id, of_type=DagsterEventType.STEP_UP_FOR_RETRY)
    assert not retries


def test_missing_candles_fail_the_plan_with_the_command_to_fix_it(
        instance: DagsterInstance, data_root: Path) -> None:
    config = _run_config(data_root, start_date="2024-05-01", end_date="2024-05-31")
    with execute_job(reconstructable(sweep_job_def), instance=instance, run_config=config,
                     raise_on_error=False) as result:
        assert not result.success
        message = _failure(instance, result.run_id)
    assert "MissingDataError" in message and "btpipeline generate" in message
