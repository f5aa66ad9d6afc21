"""A report rebuilds itself once after its backtests change (declarative automation), not once
per month of a backfill, and not again while nothing changed."""

from __future__ import annotations

import dagster as dg
import pytest

from btpipeline.assets.keys import report_key
from btpipeline.definitions import build_definitions
from btpipeline.resources.market_data_store import MarketDataStore
from btpipeline.resources.results_database import ResultsDatabase
from tests.dagster.test_backtest_assets import _run

REPORT = report_key("macd_crossover")


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture
def resources(tmp_path) -> dict:
    db = ResultsDatabase(url=f"sqlite:///{tmp_path / 'results.db'}")
    return {"market_data": MarketDataStore(root=str(tmp_path / "data")), "results_db": db}


def _requested(defs: dg.Definitions, instance: dg.DagsterInstance, cursor=None):
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance,
                                               asset_selection=dg.AssetSelection.keys(REPORT),
                                               cursor=cursor)
    return result.get_num_requested(REPORT), result.cursor


def test_a_report_is_requested_once_after_its_backtests_change(instance, resources) -> None:
    defs = build_definitions(resources)
    before, cursor = _requested(defs, instance)
    assert before == 0  # nothing materialized yet: nothing to report
    assert _run(instance, resources, "2024-01-01", "2024-03-01").success  # three months
    after, cursor = _requested(defs, instance, cursor)
    assert after == 1  # one report for the whole backfill
    again, _ = _requested(defs, instance, cursor)
    assert again == 0  # handled: no new backtest since


def test_the_reports_automation_sensor_is_on_by_default(resources) -> None:
    sensor = build_definitions(resources).get_sensor_def("reports_automation")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
