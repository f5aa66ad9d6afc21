"""Asset selections by key prefix, and the type of an asset job: shared by the domains' jobs."""

from typing import Any

from dagster import AssetSelection

from btpipeline.machine.naming import BACKTEST_PREFIX, CANDLES_PREFIX, REPORT_PREFIX

# define_asset_job returns a type dagster does not export publicly.
AssetJob = Any

BACKTESTS = AssetSelection.key_prefixes([BACKTEST_PREFIX])
CANDLES = AssetSelection.key_prefixes([CANDLES_PREFIX])
REPORTS = AssetSelection.key_prefixes([REPORT_PREFIX])
