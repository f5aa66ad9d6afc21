"""The market-data domain's contribution to btpipeline's Definitions."""

from dagster import Definitions

from btpipeline import universe
from btpipeline.assets.market_data.assets import candles_asset
from btpipeline.assets.market_data.jobs import market_data_job
from btpipeline.assets.market_data.sensors import make_market_data_sensor


def defs() -> Definitions:
    """One candles asset per epic, ``market_data_job`` and the sensor that launches it."""
    job = market_data_job()
    return Definitions(
        assets=[candles_asset(e) for e in universe.epics()],
        jobs=[job],
        sensors=[make_market_data_sensor(job, universe.strategies())],
    )
