"""``backtest_job``: every backtest asset, what the nightly schedule and the CLI launch."""

from dagster import define_asset_job

from btpipeline.assets.selections import BACKTESTS, AssetJob

BACKTEST_JOB_NAME = "backtest_job"


def backtest_job() -> AssetJob:
    return define_asset_job(
        BACKTEST_JOB_NAME, selection=BACKTESTS,
        description="Every strategy x epic backtest over one month (or a partition range).",
    )
