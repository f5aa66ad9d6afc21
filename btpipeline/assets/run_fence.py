"""The fence that lets only a live run commit results.

A worker can outlive its run's verdict: Dagster (run monitoring, a terminate, the executor
after a lost worker) marks the run FAILED or CANCELED while the step is still computing. Its
results must then not land, or the results database would hold SUCCESS rows for partitions
Dagster says were never materialized. ``ResultsDatabase.write_backtest`` calls the fence inside
its transaction, after taking the variant's lock and just before committing.
"""

from __future__ import annotations

from collections.abc import Callable

from dagster import AssetExecutionContext, DagsterInstance, DagsterRunStatus

from btpipeline.errors import RunNotLiveError

LIVE_STATUSES = frozenset({DagsterRunStatus.STARTING, DagsterRunStatus.STARTED})


def run_fence(instance: DagsterInstance, run_id: str) -> Callable[[], None]:
    """A check that raises ``RunNotLiveError`` unless run ``run_id`` is still running."""

    def check() -> None:
        run = instance.get_run_by_id(run_id)
        status = run.status if run is not None else None
        if status not in LIVE_STATUSES:
            raise RunNotLiveError(
                f"Run {run_id} is {status.value if status else 'unknown to the instance'}, "
                "not STARTED: its results were not written (only a live run may commit). "
                "Fix: nothing to do for this attempt; re-run the partitions if Dagster shows "
                "them unmaterialized.")

    return check


def fence_for(context: AssetExecutionContext) -> Callable[[], None]:
    return run_fence(context.instance, context.run.run_id)
