"""Dagster assets: candles per epic, backtests per strategy x epic, reports per strategy."""

import warnings

from dagster import BetaWarning

# BackfillPolicy.single_run() is how a backfill becomes one run (see partitions.py); its beta
# flag would otherwise print once per asset in every process that loads the definitions.
warnings.filterwarnings("ignore", category=BetaWarning, message=".*backfill_policy.*")
