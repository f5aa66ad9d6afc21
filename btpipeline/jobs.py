"""Asset jobs: what `dagster job execute`, schedules and sensors launch."""

from dagster import AssetSelection, UnresolvedAssetJobDefinition, define_asset_job

from btpipeline.assets.keys import BACKTEST_PREFIX, CANDLES_PREFIX, REPORT_PREFIX
from btpipeline.assets.partitions import monthly_partitions

BACKTESTS = AssetSelection.key_prefixes([BACKTEST_PREFIX])
CANDLES = AssetSelection.key_prefixes([CANDLES_PREFIX])
REPORTS = AssetSelection.key_prefixes([REPORT_PREFIX])


def backtest_job() -> UnresolvedAssetJobDefinition:
    return define_asset_job(
        "backtest_job", selection=BACKTESTS, partitions_def=monthly_partitions,
        description="Every strategy x epic backtest over one month (or a partition range).",
    )


def market_data_job() -> UnresolvedAssetJobDefinition:
    return define_asset_job(
        "market_data_job", selection=CANDLES | BACKTESTS, partitions_def=monthly_partitions,
        description="Check (or generate) candles, then backtest them: what the data sensor runs.",
    )


def reports_job() -> UnresolvedAssetJobDefinition:
    return define_asset_job("reports_job", selection=REPORTS,
                            description="Rebuild every strategy's report from the results DB.")
