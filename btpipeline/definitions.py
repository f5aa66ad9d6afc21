"""Wires btpipeline's assets, jobs, schedules, sensors and resources into one Definitions."""

import os
from collections.abc import Mapping

from dagster import Definitions, EnvVar

from btpipeline import universe
from btpipeline.assets.backtests import backtest_asset
from btpipeline.assets.market_data import candles_asset
from btpipeline.assets.reports import report_asset
from btpipeline.distributed.job import backtest_celery_job
from btpipeline.executors import backtest_executor
from btpipeline.jobs import backtest_job, market_data_job, reports_job
from btpipeline.monitor.settings import ResourceMonitorSettings
from btpipeline.resources.market_data_store import MarketDataStore
from btpipeline.resources.results_database import ResultsDatabase
from btpipeline.schedules import make_nightly_schedule
from btpipeline.sensors.market_data_sensor import make_market_data_sensor
from btpipeline.sensors.queue_policy import make_queue_policy_sensor
from btpipeline.sensors.resource_monitor import machine_health, make_resource_monitor_sensor
from btpipeline.sweeps.job import sweep_job


def default_resources() -> dict[str, object]:
    """The resources a deployment uses; URLs and paths come from the environment at run time
    (``BTPIPELINE_RESULTS_URL``, ``BTPIPELINE_DATA_DIR``), so no secret lands in a file or the
    UI."""
    results_db = (ResultsDatabase(url=EnvVar("BTPIPELINE_RESULTS_URL"))
                  if os.environ.get("BTPIPELINE_RESULTS_URL") else ResultsDatabase())
    market_data = (MarketDataStore(root=EnvVar("BTPIPELINE_DATA_DIR"))
                   if os.environ.get("BTPIPELINE_DATA_DIR") else MarketDataStore())
    return {"market_data": market_data, "results_db": results_db,
            "monitor_settings": ResourceMonitorSettings()}


def build_definitions(resources: Mapping[str, object] | None = None) -> Definitions:
    """All of btpipeline; ``resources`` replaces the defaults (tests point them at tmp folders)."""
    strategies, epics = universe.strategies(), universe.epics()
    backtests = backtest_job()
    market_data = market_data_job()
    return Definitions(
        assets=[candles_asset(e) for e in epics]
        + [backtest_asset(s, e) for s in strategies for e in epics]
        + [report_asset(s, epics) for s in strategies] + [machine_health],
        jobs=[backtests, market_data, reports_job(), sweep_job(),
              backtest_celery_job()],
        schedules=[make_nightly_schedule(backtests)],
        sensors=[make_market_data_sensor(market_data, strategies),
                 make_resource_monitor_sensor(), make_queue_policy_sensor()],
        resources={**default_resources(), **(resources or {})},
        executor=backtest_executor,
    )


defs = build_definitions()


def market_data_job_def():  # noqa: ANN201 - a reconstructable entry point for execute_job
    return defs.resolve_job_def("market_data_job")


def reports_job_def():  # noqa: ANN201
    return defs.resolve_job_def("reports_job")


def backtest_job_def():  # noqa: ANN201
    return defs.resolve_job_def("backtest_job")
