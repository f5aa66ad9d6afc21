"""The backtests domain's contribution to btpipeline's Definitions."""

from dagster import Definitions

from btpipeline import universe
from btpipeline.assets.backtests.assets import backtest_asset
from btpipeline.assets.backtests.jobs import backtest_job
from btpipeline.assets.backtests.schedules import make_nightly_schedule


def defs() -> Definitions:
    """One backtest asset per strategy x epic, ``backtest_job`` and its nightly schedule."""
    job = backtest_job()
    return Definitions(
        assets=[backtest_asset(s, e) for s in universe.strategies() for e in universe.epics()],
        jobs=[job],
        schedules=[make_nightly_schedule(job)],
    )
