"""``candles/<EPIC>``: the stored 1-minute candles of one epic, one partition per month.

Materializing a month checks that its Arrow file is there and readable and records what it
holds; with ``generate_if_missing`` it first writes deterministic synthetic candles (the demo
and the tests). Real data comes in with ``btpipeline import`` and is picked up by the
market-data sensor.
"""

import calendar
import datetime as dt

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    Config,
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    asset,
)
from pydantic import Field

from btpipeline.assets.failures import step_failure
from btpipeline.assets.keys import candles_key
from btpipeline.assets.time_windows import months_in, window_ns
from btpipeline.data.store import generate_into_store
from btpipeline.errors import BtPipelineError, MissingDataError
from btpipeline.machine.naming import CANDLES_PREFIX
from btpipeline.resources.market_data_store import MarketDataStore


class CandlesConfig(Config):
    generate_if_missing: bool = Field(
        default=False,
        description="Write deterministic synthetic candles for months that have no file yet.",
    )
    seed: int = Field(default=7, description="Seed of the synthetic generator.")


def _ensure_month(store: MarketDataStore, epic: str, year: int, month: int,
                  config: CandlesConfig) -> int:
    """Bars stored for the month, generating them first when allowed."""
    if (year, month) not in store.months(epic=epic):
        if not config.generate_if_missing:
            raise MissingDataError(
                f"No candles stored for {epic} {year:04d}-{month:02d}. Fix: import them with "
                f"`btpipeline import FILE --epic {epic}`, generate synthetic ones with "
                f"`btpipeline generate --epics {epic} --start {year:04d}-{month:02d}-01 "
                f"--end {year:04d}-{month:02d}-28`, or run with generate_if_missing: true."
            )
        last = calendar.monthrange(year, month)[1]
        generate_into_store(store.store(), [epic], dt.date(year, month, 1),
                            dt.date(year, month, last), config.seed)
    return len(store.store().read_month(epic, year, month))


def candles_asset(epic: str, partitions: PartitionsDefinition) -> AssetsDefinition:
    """``candles/<epic>``; ``epic`` is an instrument of the universe file."""

    @asset(
        key=candles_key(epic),
        group_name=CANDLES_PREFIX,
        partitions_def=partitions,
        backfill_policy=BackfillPolicy.single_run(),
        description=f"1-minute {epic} candles, one uncompressed Arrow file per month.",
        kinds={"arrow"},
    )
    def _candles(context: AssetExecutionContext, config: CandlesConfig,
                 market_data: MarketDataStore) -> MaterializeResult:
        try:
            window_ns(context)  # a reversed partition range fails here, naming the fix
            bars = {f"{y:04d}-{m:02d}": _ensure_month(market_data, epic, y, m, config)
                    for y, m in months_in(context.partition_time_window)}
        except BtPipelineError as error:
            raise step_failure(error) from error
        context.log.info(f"{epic}: bars per month {bars}")
        return MaterializeResult(metadata={
            "bars": MetadataValue.int(sum(bars.values())),
            "months": MetadataValue.json(bars),
            "root": MetadataValue.path(market_data.root),
        })

    return _candles
