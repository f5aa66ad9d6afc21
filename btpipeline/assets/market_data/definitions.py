"""The market-data domain's contribution to btpipeline's Definitions."""

from dagster import Definitions, PartitionsDefinition

from btpipeline.assets.market_data.assets import candles_asset
from btpipeline.assets.market_data.jobs import market_data_job
from btpipeline.assets.market_data.sensors import make_market_data_sensor
from btpipeline.universe import Universe


def used_instruments(universe: Universe) -> list[str]:
    """The instruments some variant runs on, in file order (declared but unused ones get no
    candles asset: nothing would read them)."""
    used = {name for variant in universe.variants for name in universe.instruments_of(variant)}
    return [name for name in universe.instruments if name in used]


def defs(universe: Universe, partitions: PartitionsDefinition) -> Definitions:
    """One candles asset per used instrument, ``market_data_job`` and the sensor that
    launches it."""
    job = market_data_job()
    return Definitions(
        assets=[candles_asset(e, partitions) for e in used_instruments(universe)],
        jobs=[job],
        sensors=[make_market_data_sensor(job, universe.grid(), universe.history_start)],
    )
