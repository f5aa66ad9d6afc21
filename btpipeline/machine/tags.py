"""Tags the backtest executor reads, namespaced under ``btpipeline/`` (plus Dagster's own).

Run tags:
    ``btpipeline/priority``   a :class:`~btpipeline.machine.priority.JobPriority` name
                              (CRITICAL, HIGH, NORMAL, LOW, BULK); wins over ``dagster/priority``.
    ``dagster/priority``      Dagster's integer run priority (queue order, pool claims).
    ``btpipeline/preemptible`` "true" on LOW and BULK runs (set with the priority).

Op tags:
    ``btpipeline/timeout_seconds``  per-step wall-clock limit (float seconds).
    ``dagster/priority``            within a run, ready steps start highest first.
"""

from __future__ import annotations

RUN_PRIORITY_TAG = "btpipeline/priority"
DAGSTER_PRIORITY_TAG = "dagster/priority"
STEP_TIMEOUT_TAG = "btpipeline/timeout_seconds"
#: On LOW and BULK runs: dagster.yaml caps how many such runs hold run slots, so a queued
#: HIGH run always finds one while they are paused for it (preemption).
PREEMPTIBLE_TAG = "btpipeline/preemptible"

#: Default Dagster concurrency pool for backtest steps (``@asset(pool=BACKTEST_POOL)``).
BACKTEST_POOL = "backtests"

#: When a run must be done by (ISO 8601, UTC), the queue-policy sensor's verdict on it, and
#: the mark of a run it boosted (see :mod:`btpipeline.machine.deadlines`).
DEADLINE_TAG = "btpipeline/deadline"
DEADLINE_STATUS_TAG = "btpipeline/deadline_status"
BOOSTED_TAG = "btpipeline/deadline_boosted"

#: Dagster's tags for a single run over a partition range (what a single-run backfill sets).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
