"""Asset jobs: what `dagster job execute`, schedules and sensors launch."""

from typing import Any

from dagster import AssetSelection, define_asset_job

from btpipeline.machine.naming import BACKTEST_PREFIX, CANDLES_PREFIX, REPORT_PREFIX

# define_asset_job returns a type dagster does not export publicly.
AssetJob = Any

BACKTESTS = AssetSelection.key_prefixes([BACKTEST_PREFIX])
CANDLES = AssetSelection.key_prefixes([CANDLES_PREFIX])
REPORTS = AssetSelection.key_prefixes([REPORT_PREFIX])


def backtest_job() -> AssetJob:
    return define_asset_job(
        "backtest_job", selection=BACKTESTS,
        description="Every strategy x epic backtest over one month (or a partition range).",
    )


def market_data_job() -> AssetJob:
    return define_asset_job(
        "market_data_job", selection=CANDLES | BACKTESTS,
        description="Check (or generate) candles, then backtest them: what the data sensor runs.",
    )


def reports_job() -> AssetJob:
    return define_asset_job("reports_job", selection=REPORTS,
                            description="Rebuild every strategy's report from the results DB.")
