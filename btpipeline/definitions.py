"""Wires btpipeline's assets, jobs, schedules, sensors and resources into one Definitions."""

from dagster import Definitions

from btpipeline import universe
from btpipeline.assets.backtests import backtest_asset
from btpipeline.assets.market_data import candles_asset
from btpipeline.assets.reports import report_asset
from btpipeline.jobs import backtest_job, market_data_job, reports_job
from btpipeline.resources.market_data_store import MarketDataStore
from btpipeline.resources.results_database import ResultsDatabase
from btpipeline.schedules import make_nightly_schedule
from btpipeline.sensors.market_data_sensor import make_market_data_sensor


def build_definitions() -> Definitions:
    strategies, epics = universe.strategies(), universe.epics()
    backtests = backtest_job()
    market_data = market_data_job()
    return Definitions(
        assets=[candles_asset(e) for e in epics]
        + [backtest_asset(s, e) for s in strategies for e in epics]
        + [report_asset(s, epics) for s in strategies],
        jobs=[backtests, market_data, reports_job()],
        schedules=[make_nightly_schedule(backtests)],
        sensors=[make_market_data_sensor(market_data, strategies)],
        resources={"market_data": MarketDataStore(), "results_db": ResultsDatabase()},
    )


defs = build_definitions()


def market_data_job_def():  # noqa: ANN201 - a reconstructable entry point for execute_job
    return defs.resolve_job_def("market_data_job")


def reports_job_def():  # noqa: ANN201
    return defs.resolve_job_def("reports_job")
