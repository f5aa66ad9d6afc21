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
