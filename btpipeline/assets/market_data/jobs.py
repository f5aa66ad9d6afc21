"""``market_data_job``: candles, then the backtests on them; what the market-data sensor runs."""

from dagster import define_asset_job

from btpipeline.assets.selections import BACKTESTS, CANDLES, AssetJob

MARKET_DATA_JOB_NAME = "market_data_job"


def market_data_job() -> AssetJob:
    return define_asset_job(
        MARKET_DATA_JOB_NAME, selection=CANDLES | BACKTESTS,
        description="Check (or generate) candles, then backtest them: what the data sensor runs.",
    )
