"""Parameter sweeps: the chunked job run for real on backtest_executor (execute_job, a
temporary instance, one month of synthetic candles in a tmp store, a SQLite results database):
results equal single backtests for every built-in and a user strategy, a killed chunk is
retried and stored exactly once, a re-run with the same sweep id replaces its rows. Grid and
rule validation without Dagster: tests/unit/test_sweep_grid.py."""

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
from btpipeline.resources.results_database import ResultsDatabase
from btpipeline.strategies import Account, CostModel, run_backtest
from btpipeline.sweeps.grid import sweep_strategy
from btpipeline.sweeps.spec import METRICS
from tests.support.sweep_jobs import sweep_die_job, sweep_fail_job, sweep_kill_job

# tmpfs when there is one: Dagster's SQLite event log fsyncs every event.
SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") else None
GRID = {"fast": [8, 12, 16], "slow": [21, 26], "signal": [9]}  # 6 combinations
START, END = "2024-01-01", "2024-01-31"
SPREAD_PIPS, COMMISSION = 1.0, 3.5
DONCHIAN = "examples.strategies.donchian_breakout:DonchianBreakout"
GRIDS = {
    "macd_crossover": {"fast": [6, 12], "slow": [20, 26], "signal": [9]},
    "ema_crossover": {"fast": [5, 10], "slow": [30, 50]},
    "rsi_mean_reversion": {"period": [7, 14], "lower": [25, 30]},
    "bollinger_breakout": {"window": [10, 20], "k": [1.5, 2.0]},
    DONCHIAN: {"window": [20, 55], "exit_fraction": [0.5]},
}


# ---------------------------------------------------------------- the job, for real


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """January 2024 plus December 2023 for the indicators' warm-up."""
    root = tmp_path_factory.mktemp("sweep_data")
    generate_into_store(CandleStore(root), ["EURUSD"], dt.date(2023, 12, 1),
                        dt.date(2024, 1, 31), seed=7)
    return root


@pytest.fixture(scope="module")
def results_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('sweep_results') / 'results.db'}"


@pytest.fixture(scope="module")
def instance() -> Iterator[DagsterInstance]:
    with tempfile.TemporaryDirectory(dir=SCRATCH) as home:
        with instance_for_test(temp_dir=home) as inst:
            yield inst


def _run_config(data_root: Path, results_url: str, **sweep: Any) -> dict[str, Any]:
    config = {"start_date": START, "end_date": END, "grid": GRID, "spread_pips": SPREAD_PIPS,
              "commission_per_lot": COMMISSION, "rank_by": "total_return", "top_n": 3,
              "report_dir": str(data_root / "reports"), **sweep}
    return {"ops": {"plan_sweep": {"config": config}},
            "resources": {"market_data": {"config": {"root": str(data_root)}},
                          "results_db": {"config": {"url": results_url}}},
            "execution": {"config": {"max_concurrent_backtests": 2,
                                     "execution_mode": "STANDALONE"}}}


def _steps(instance: DagsterInstance, run_id: str, event_type: DagsterEventType) -> set[str]:
    return {r.dagster_event.step_key for r in instance.all_logs(run_id, of_type=event_type)}


def _failure(instance: DagsterInstance, run_id: str) -> str:
    [event] = instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE)
    assert event.dagster_event.step_key == "plan_sweep"
    return event.dagster_event.step_failure_data.error.message


def _failures(result: JobExecutionResult) -> list[str]:
    return [e.step_failure_data.error.message[:600] for e in result.all_events
            if e.event_type == DagsterEventType.STEP_FAILURE]


@pytest.fixture(scope="module")
def sweep(instance: DagsterInstance, data_root: Path,
          results_url: str) -> Iterator[tuple[JobExecutionResult, pd.DataFrame]]:
    with execute_job(reconstructable(sweep_job_def), instance=instance,
                     run_config=_run_config(data_root, results_url, sweep_id="macd-6"),
                     raise_on_error=False) as result:
        table = result.output_for_node("rank_sweep") if result.success else pd.DataFrame()
        yield result, table


def _direct(data_root: Path, strategy: str, params: dict[str, Any]) -> dict[str, float]:
    """The same backtest without Dagster: read with the warm-up, run_backtest."""
    chosen = sweep_strategy(strategy)
    start_ns = int(pd.Timestamp(START, tz="UTC").value)
    end_ns = int(pd.Timestamp(END, tz="UTC").value) + 86_400 * 10**9
    candles = MarketDataStore(root=str(data_root)).read_range(
        epic="EURUSD", start_ns=start_ns, end_ns=end_ns,
        warmup_bars=chosen.warmup_bars(chosen.make_params(params)))
    epic = get_epic("EURUSD")
    result = run_backtest(candles, strategy=chosen, params=params, epic=epic,
                          start_ns=start_ns, end_ns=end_ns, account=Account(),
                          costs=CostModel.for_epic(epic, spread_pips=SPREAD_PIPS,
                                                   commission_per_lot=COMMISSION))
    return {**result.metrics, "fills": float(len(result.fills))}


def test_the_registered_job_runs_on_backtest_executor() -> None:
    assert sweep_job_def().executor_def is backtest_executor


def test_the_sweep_fans_out_one_step_per_chunk(instance: DagsterInstance,
                                               sweep: tuple[JobExecutionResult,
                                                            pd.DataFrame]) -> None:
    result, _ = sweep
    assert result.success, _failures(result)
    succeeded = _steps(instance, result.run_id, DagsterEventType.STEP_SUCCESS)
    mapped = {key for key in succeeded if key.startswith("backtest_chunk[")}
    assert mapped == {"backtest_chunk[k000_c0000_c0002]", "backtest_chunk[k001_c0003_c0005]"}
    assert {"plan_sweep", "rank_sweep"} <= succeeded
    in_workers = [r for r in instance.all_logs(result.run_id, of_type=DagsterEventType.ENGINE_EVENT)
                  if r.dagster_event.step_key in mapped and "ran in worker" in r.user_message]
    assert len(in_workers) == 2
    progress = [r.user_message for r in instance.all_logs(result.run_id)
                if r.user_message.startswith("Chunk 2/2 stored: 3 combinations")]
    assert progress


def test_every_combination_equals_a_direct_run_backtest(
        data_root: Path, results_url: str,
        sweep: tuple[JobExecutionResult, pd.DataFrame]) -> None:
    result, table = sweep
    assert result.success
    assert len(table) == 6 and list(table["rank"]) == [1, 2, 3, 4, 5, 6]
    for row in table.to_dict("records"):
        params = {"fast": row["fast"], "slow": row["slow"], "signal": row["signal"]}
        direct = _direct(data_root, "macd_crossover", params)
        assert direct["num_trades"] > 50
        for metric in (*METRICS, "fills"):
            assert row[metric] == direct[metric], (params, metric)
    stored = ResultsDatabase(url=results_url)
    assert stored.count_sweep_rows("macd-6") == {i: 1 for i in range(6)}
    sweep_row = stored.read_sweep("macd-6")
    assert sweep_row is not None and sweep_row["status"] == "SUCCESS"
    assert (sweep_row["strategy"], sweep_row["epic"], sweep_row["range_start"]) == (
        "macd_crossover", "EURUSD", START)
    assert sweep_row["costs"]["spread_pips"] == SPREAD_PIPS


@pytest.mark.parametrize("strategy", sorted(GRIDS))
def test_chunked_results_equal_single_backtests(strategy: str, instance: DagsterInstance,
                                                data_root: Path, results_url: str) -> None:
    sweep_id = f"equal-{strategy.split(':')[-1]}"
    config = _run_config(data_root, results_url, strategy=strategy, grid=GRIDS[strategy],
                         sweep_id=sweep_id, skip_invalid=True)
    with execute_job(reconstructable(sweep_job_def), instance=instance, run_config=config,
                     raise_on_error=False) as result:
        assert result.success, _failures(result)
    stored = ResultsDatabase(url=results_url).read_sweep_results(sweep_id)
    assert len(stored) == 4 if strategy != DONCHIAN else len(stored) == 2
    for row in stored.to_dict("records"):
        direct = _direct(data_root, strategy, row["params"])
        for metric in (*METRICS, "fills"):
            value, expected = row[metric], direct[metric]
            assert value == expected or (pd.isna(value) and expected == float("inf")), \
                (row["params"], metric, value, expected)


def test_a_killed_chunk_is_retried_and_stored_exactly_once(
        instance: DagsterInstance, data_root: Path, results_url: str, tmp_path: Path) -> None:
    config = _run_config(data_root, results_url, sweep_id="killed")
    config["resources"]["results_db"]["config"]["marker"] = str(tmp_path / "killed")
    with execute_job(reconstructable(sweep_kill_job), instance=instance, run_config=config,
                     raise_on_error=False) as result:
        assert result.success, _failures(result)
        retried = _steps(instance, result.run_id, DagsterEventType.STEP_UP_FOR_RETRY)
    assert (tmp_path / "killed").exists()
    assert retried == {"backtest_chunk[k000_c0000_c0002]"}
    assert ResultsDatabase(url=results_url).count_sweep_rows("killed") == {
        i: 1 for i in range(6)}


def test_a_chunk_that_fails_for_good_ends_the_sweep_failed_with_its_error(
        instance: DagsterInstance, data_root: Path, results_url: str) -> None:
    config = _run_config(data_root, results_url, sweep_id="broken")
    config["execution"]["config"]["retries"] = {"disabled": {}}
    with execute_job(reconstructable(sweep_fail_job), instance=instance, run_config=config,
                     raise_on_error=False) as result:
        assert not result.success
        failed = _steps(instance, result.run_id, DagsterEventType.STEP_FAILURE)
    assert failed == {"backtest_chunk[k000_c0000_c0002]"}
    sweep = ResultsDatabase(url=results_url).read_sweep("broken")
    assert sweep is not None and sweep["status"] == "FAILED"
    assert "k000_c0000_c0002" in sweep["error"] and "disk full" in sweep["error"]


def test_a_sweep_whose_last_worker_was_killed_is_ended_by_the_run_failure_sensor(
        instance: DagsterInstance, data_root: Path, results_url: str) -> None:
    """A killed worker never reaches the op's own FAILED marking: the run status sensor (as
    the daemon evaluates it, on the run's RUN_FAILURE event) ends the sweep instead."""
    from dagster import DagsterRunStatus, build_run_status_sensor_context

    from btpipeline.assets.sweeps.sensors import sweep_run_end_sensor

    config = _run_config(data_root, results_url, sweep_id="killed-for-good")
    config["execution"]["config"]["retries"] = {"disabled": {}}
    with execute_job(reconstructable(sweep_die_job), instance=instance, run_config=config,
                     raise_on_error=False) as result:
        assert not result.success
        run_id = result.run_id
    database = ResultsDatabase(url=results_url)
    assert database.read_sweep("killed-for-good")["status"] == "RUNNING"
    [failure] = instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE)
    sensor = sweep_run_end_sensor(DagsterRunStatus.FAILURE)
    with build_run_status_sensor_context(
            sensor_name=sensor.name, dagster_event=failure.dagster_event,
            dagster_instance=instance, dagster_run=instance.get_run_by_id(run_id),
            resources={"results_db": database}) as context:
        sensor(context)
    ended = database.read_sweep("killed-for-good")
    assert ended["status"] == "FAILED" and run_id in ended["error"]
    assert ended["finished_at"] is not None


def test_a_rerun_with_the_same_id_replaces_its_rows(
        instance: DagsterInstance, data_root: Path, results_url: str) -> None:
    db = ResultsDatabase(url=results_url)
    for grid, expected in (({"fast": [8, 12], "slow": [21, 26], "signal": [9]}, 4),
                           ({"fast": [8], "slow": [21], "signal": [9]}, 1)):
        config = _run_config(data_root, results_url, sweep_id="again", grid=grid)
        with execute_job(reconstructable(sweep_job_def), instance=instance,
                         run_config=config, raise_on_error=False) as result:
            assert result.success, _failures(result)
        assert db.count_sweep_rows("again") == {i: 1 for i in range(expected)}


def test_rules_two_parameters_heatmap_and_html(instance: DagsterInstance, data_root: Path,
                                               results_url: str) -> None:
    grid = {"fast": [8, 12, 21], "slow": [12, 21, 26]}
    config = _run_config(data_root, results_url, sweep_id="heat", grid=grid,
                         rules=["fast < slow"], chunks=3)
    with execute_job(reconstructable(sweep_job_def), instance=instance, run_config=config,
                     raise_on_error=False) as result:
        assert result.success, _failures(result)
        logs = [r.user_message for r in instance.all_logs(result.run_id)]
        [output] = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_OUTPUT
                    and e.step_key == "rank_sweep"]
    assert any("dropped 3 combinations" in message for message in logs)
    metadata = output.step_output_data.metadata
    assert metadata["combinations"].value == 6
    heatmap = metadata["heatmap"].value
    assert len(heatmap) < 1_000 and (heatmap.startswith("![") or heatmap.startswith("| fast"))
    report = Path(metadata["report"].value)
    html = report.read_text()
    assert report.parent == data_root / "reports" and "data:image/png;base64," in html
    assert html.count("<tr>") == 1 + 6


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
        instance: DagsterInstance, data_root: Path, results_url: str,
        grid: dict[str, list[int]], expected: list[str]) -> None:
    with execute_job(reconstructable(sweep_job_def), instance=instance,
                     run_config=_run_config(data_root, results_url, grid=grid),
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
        instance: DagsterInstance, data_root: Path, results_url: str) -> None:
    config = _run_config(data_root, results_url, start_date="2024-05-01",
                         end_date="2024-05-31")
    with execute_job(reconstructable(sweep_job_def), instance=instance, run_config=config,
                     raise_on_error=False) as result:
        assert not result.success
        message = _failure(instance, result.run_id)
    assert "MissingDataError" in message and "btpipeline generate" in message


def test_a_rule_naming_an_unknown_parameter_fails_the_plan_with_the_fix(
        instance: DagsterInstance, data_root: Path, results_url: str) -> None:
    config = _run_config(data_root, results_url, rules=["fast < slowest"])
    with execute_job(reconstructable(sweep_job_def), instance=instance, run_config=config,
                     raise_on_error=False) as result:
        assert not result.success
        message = _failure(instance, result.run_id)
    assert "'slowest' is not a parameter of strategy 'macd_crossover'" in message
    assert "Fix:" in message
