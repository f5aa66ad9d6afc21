"""The one time partitioning every btpipeline asset shares: calendar months, UTC.

Why monthly, not daily (``benchmarks/partition_cost.md``): Dagster's own bookkeeping costs
about 20-30 ms per partition materialized in a single run on the embedded SQLite instance, on
top of ~0.3 s per in-process run. A year of 12 strategy x epic assets is 4,380 daily partitions
(~2 minutes of pure bookkeeping) against 144 monthly ones (~3 s), while the backtest itself
computes a year of 1-minute bars in tens of milliseconds. Months also match how candles are
stored (one Arrow file per epic per month). ``end_offset=1`` makes the current, still-growing
month a partition, so the nightly schedule can refresh the month that holds yesterday.

The start and the month keys are plain strings in :mod:`btpipeline.machine.naming`
(``month_key``); the range tags of a single-run backfill are in :mod:`btpipeline.machine.tags`.
"""

from dagster import MonthlyPartitionsDefinition

from btpipeline.machine.naming import PARTITIONS_START

monthly_partitions = MonthlyPartitionsDefinition(
    start_date=PARTITIONS_START, end_offset=1, timezone="UTC"
)
