"""btpipeline's Dagster definitions, one folder per domain: market_data/ (candles per epic),
backtests/ (a backtest per strategy x epic), reports/ (a report per strategy), sweeps/,
monitoring/ and distributed/. Each folder's ``definitions.defs()`` returns its Definitions;
btpipeline.definitions merges them. Shared by every domain: partitions.py, keys.py,
selections.py, failures.py and time_windows.py."""

import warnings

from dagster import BetaWarning

# BackfillPolicy.single_run() is how a backfill becomes one run (see partitions.py); its beta
# flag would otherwise print once per asset in every process that loads the definitions.
warnings.filterwarnings("ignore", category=BetaWarning, message=".*backfill_policy.*")
