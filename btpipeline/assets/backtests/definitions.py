"""The backtests domain's contribution to btpipeline's Definitions."""

from dagster import Definitions, PartitionsDefinition

from btpipeline.assets.backtests.assets import backtest_asset
from btpipeline.assets.backtests.jobs import backtest_job
from btpipeline.assets.backtests.schedules import make_nightly_schedule
from btpipeline.universe import Universe, backtest_specs


def defs(universe: Universe, partitions: PartitionsDefinition) -> Definitions:
    """One backtest asset per variant x instrument, ``backtest_job`` and its nightly
    schedule."""
    job = backtest_job()
    return Definitions(
        assets=[backtest_asset(spec, partitions) for spec in backtest_specs(universe)],
        jobs=[job],
        schedules=[make_nightly_schedule(job)],
    )
