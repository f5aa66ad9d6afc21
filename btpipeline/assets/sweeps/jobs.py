"""``sweep_job``: a strategy parameter sweep as a Dagster-native fan-out on backtest_executor.

    plan_sweep ──DynamicOutput per combination──▶ backtest_combination (mapped) ──▶ rank_sweep
        └────────────────────────── ranking settings ─────────────────────────────────┘

The ops and their config are in ops.py. A reconstructable entry point with the deployment's
resources is ``btpipeline.definitions.sweep_job_def``.
"""

from dagster import JobDefinition, job

from btpipeline.assets.sweeps.ops import backtest_combination, plan_sweep, rank_sweep
from btpipeline.executors import backtest_executor

SWEEP_JOB_NAME = "sweep_job"


def sweep_job(resources: dict[str, object] | None = None) -> JobDefinition:
    """The sweep job on ``backtest_executor``. Without ``resources`` it needs ``market_data``
    from the ``Definitions`` it is registered in (as in btpipeline.definitions)."""

    @job(name=SWEEP_JOB_NAME, executor_def=backtest_executor, resource_defs=resources or {},
         description="Parameter sweep of one strategy on one epic: one mapped backtest step "
         "per grid combination on backtest_executor's workers, then a ranked table.",
         tags={"btpipeline/kind": "sweep"})
    def sweep() -> None:
        combinations, ranking = plan_sweep()
        results = combinations.map(backtest_combination)
        rank_sweep(results.collect(), ranking)

    return sweep
