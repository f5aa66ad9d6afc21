"""Backtest assets end to end through Dagster (in-process runs on a temporary instance):
partition ranges, idempotent re-runs, split vs one piece, bad input, reports."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance, instance_for_test

from btpipeline.assets.keys import backtest_key, candles_key, report_key
from btpipeline.definitions import build_definitions
from btpipeline.machine.tags import RANGE_END_TAG, RANGE_START_TAG
from btpipeline.resources.market_data_store import MarketDataStore
from btpipeline.resources.results_database import ResultsDatabase

STRATEGIES = ["macd_crossover", "rsi_mean_reversion"]


@pytest.fixture
def instance():
    with instance_for_test() as inst:
        yield inst


@pytest.fixture
def resources(tmp_path) -> dict:
    db = ResultsDatabase(url=f"sqlite:///{tmp_path / 'results.db'}")
    return {"market_data": MarketDataStore(root=str(tmp_path / "data")), "results_db": db}


def _run(instance: DagsterInstance, resources: dict, first: str, last: str,
         strategies=STRATEGIES, epic="EURUSD", run_config=None, generate=True):
    job = build_definitions(resources).resolve_job_def("market_data_job")
    selection = [candles_key(epic)] + [backtest_key(s, epic) for s in strategies]
    config = run_config or {}
    if generate:
        config.setdefault("ops", {})[candles_key(epic).to_python_identifier()] = {
            "config": {"generate_if_missing": True}}
    return job.execute_in_process(
        instance=instance, asset_selection=selection,
        tags={RANGE_START_TAG: first, RANGE_END_TAG: last}, run_config=config, raise_on_error=False)


def test_a_range_runs_as_one_run_and_records_every_month(instance, resources) -> None:
    result = _run(instance, resources, "2024-01-01", "2024-03-01")
    assert result.success
    for strategy in STRATEGIES:
        done = instance.get_materialized_partitions(backtest_key(strategy, "EURUSD"))
        assert done == {"2024-01-01", "2024-02-01", "2024-03-01"}
    assert len(instance.get_runs()) == 1
    daily = resources["results_db"].read_daily_pnl(strategy="macd_crossover", epic="EURUSD")
    assert set(daily["partition_key"]) == {"2024-01-01", "2024-02-01", "2024-03-01"}
    assert daily["day"].is_unique


def test_rerunning_a_month_replaces_its_rows_and_leaves_others(instance, resources) -> None:
    db: ResultsDatabase = resources["results_db"]
    assert _run(instance, resources, "2024-01-01", "2024-03-01").success
    before = db.read_signals(strategy="macd_crossover", epic="EURUSD")
    counts = db.count_rows()
    rerun = _run(instance, resources, "2024-02-01", "2024-02-01")
    assert rerun.success
    after = db.read_signals(strategy="macd_crossover", epic="EURUSD")
    now = db.count_rows()
    assert now["backtest_signals"] == counts["backtest_signals"]
    assert now["backtest_daily_pnl"] == counts["backtest_daily_pnl"]
    # One execution row per (strategy, epic, range): the Feb-only range replaces the
    # Jan..Mar row it overlaps (that row's metrics described February's replaced fills).
    assert now["backtest_executions"] == counts["backtest_executions"]
    assert _run(instance, resources, "2024-02-01", "2024-02-01").success
    assert db.count_rows() == now
    feb = after[after["partition_key"] == "2024-02-01"]
    assert set(feb["run_id"]) == {rerun.run_id}
    cols = ["timestamp", "side", "action", "price", "pnl"]
    pd.testing.assert_frame_equal(
        before.sort_values(["timestamp", "seq"])[cols].reset_index(drop=True),
        after.sort_values(["timestamp", "seq"])[cols].reset_index(drop=True))


def test_a_range_in_one_piece_equals_its_months_run_separately(tmp_path) -> None:
    def fills(first_last: list[tuple[str, str]], name: str) -> pd.DataFrame:
        res = {"market_data": MarketDataStore(root=str(tmp_path / "data")),
               "results_db": ResultsDatabase(url=f"sqlite:///{tmp_path / name}")}
        with instance_for_test() as inst:
            for first, last in first_last:
                assert _run(inst, res, first, last).success
        return res["results_db"].read_signals(strategy="rsi_mean_reversion", epic="EURUSD")

    whole = fills([("2024-01-01", "2024-03-01")], "whole.db")
    split = fills([("2024-01-01", "2024-01-01"), ("2024-02-01", "2024-02-01"),
                   ("2024-03-01", "2024-03-01")], "split.db")
    key = ["timestamp", "seq"]
    whole, split = (f.sort_values(key).reset_index(drop=True) for f in (whole, split))
    assert len(whole) > 10
    assert list(whole["timestamp"]) == list(split["timestamp"])
    assert list(whole["side"]) == list(split["side"])
    np.testing.assert_allclose(whole["price"], split["price"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(whole["pnl"], split["pnl"], rtol=0, atol=1e-9)


def test_a_month_without_data_fails_clearly_and_keeps_stored_rows(instance, resources) -> None:
    db: ResultsDatabase = resources["results_db"]
    assert _run(instance, resources, "2024-01-01", "2024-01-01").success
    before = db.count_rows()
    job = build_definitions(resources).resolve_job_def("backtest_job")
    result = job.execute_in_process(
        instance=instance, partition_key="2024-05-01",
        asset_selection=[backtest_key("macd_crossover", "EURUSD")], raise_on_error=False)
    assert not result.success
    message = _failure_message(result)
    assert "EURUSD" in message and "btpipeline generate" in message
    # Bad input fails the same way every time: no retry despite the asset's RetryPolicy.
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    after = db.count_rows()
    assert after["backtest_signals"] == before["backtest_signals"]
    assert after["backtest_daily_pnl"] == before["backtest_daily_pnl"]
    failed = db.read_executions(strategy="macd_crossover", epic="EURUSD")
    assert "FAILED" in set(failed["status"])


def test_bad_strategy_parameters_fail_before_anything_is_written(instance, resources) -> None:
    op = backtest_key("macd_crossover", "EURUSD").to_python_identifier()
    config = {"ops": {op: {"config": {"params": {"fast": 30, "slow": 26}}}}}
    result = _run(instance, resources, "2024-01-01", "2024-01-01", strategies=["macd_crossover"],
                  run_config=config)
    assert not result.success
    assert "fast" in _failure_message(result)
    assert resources["results_db"].count_rows()["backtest_signals"] == 0


def test_report_shows_metrics_an_inline_chart_and_links_the_html(instance, resources) -> None:
    assert _run(instance, resources, "2024-01-01", "2024-02-01").success
    job = build_definitions(resources).resolve_job_def("reports_job")
    result = job.execute_in_process(instance=instance,
                                    asset_selection=[report_key("macd_crossover")])
    assert result.success
    event = instance.get_latest_materialization_event(AssetKey(["report", "macd_crossover"]))
    metadata = event.asset_materialization.metadata
    table = metadata["metrics"].value
    assert "EURUSD" in table and "Sharpe" in table
    # Each inline entry stays under the length Dagster renders without "[Show Markdown]".
    for key in ("metrics", "details", "equity_drawdown"):
        assert len(metadata[key].value) < 1000, key
    assert metadata["equity_drawdown"].value.startswith("![")
    assert "data:image/png;base64," in metadata["equity_drawdown_png"].value
    html = Path(metadata["report_html"].value)
    assert html.exists() and "<table" in html.read_text()


def _failure_message(result) -> str:
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures, "expected a failed step"
    return " ".join(str(e.event_specific_data.error.message) for e in failures)
