"""The one time partitioning every btpipeline asset shares: calendar months, UTC.

Why monthly, not daily (``benchmarks/partition_cost.md``): Dagster's own bookkeeping costs
about 20-30 ms per partition materialized in a single run on the embedded SQLite instance, on
top of ~0.3 s per in-process run. A year of 12 strategy x epic assets is 4,380 daily partitions
(~2 minutes of pure bookkeeping) against 144 monthly ones (~3 s), while the backtest itself
computes a year of 1-minute bars in tens of milliseconds. Months also match how candles are
stored (one Arrow file per epic per month). ``end_offset=1`` makes the current, still-growing
month a partition, so the nightly schedule can refresh the month that holds yesterday.

The partitions start at the universe file's ``history_start`` (``Universe.history_start``):
``build_definitions`` builds ONE definition from it and hands it to every domain. The month
keys are plain strings in :mod:`btpipeline.machine.naming` (``month_key``); the range tags of a
single-run backfill are in :mod:`btpipeline.machine.tags`.
"""

import datetime as dt

from dagster import MonthlyPartitionsDefinition

from btpipeline.machine.naming import month_key


def monthly_partitions(history_start: dt.date) -> MonthlyPartitionsDefinition:
    """Calendar months (UTC) from the month of ``history_start`` to the current one."""
    return MonthlyPartitionsDefinition(start_date=month_key(history_start), end_offset=1,
                                       timezone="UTC")
