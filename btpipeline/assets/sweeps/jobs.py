"""``sweep_job``: a strategy parameter sweep as a Dagster-native fan-out on backtest_executor.

    plan_sweep ──DynamicOutput per chunk──▶ backtest_chunk (mapped, stores its rows) ──▶ rank_sweep
        └──────────────────────── ranking settings (sweep id) ───────────────────────────┘

The ops and their config are in ops.py. A reconstructable entry point with the deployment's
resources is ``btpipeline.definitions.sweep_job_def``.
"""

from dagster import JobDefinition, job

from btpipeline.assets.sweeps.ops import backtest_chunk, plan_sweep, rank_sweep
from btpipeline.assets.sweeps.step_io import SWEEP_IO, sweep_step_io
from btpipeline.executors import backtest_executor

SWEEP_JOB_NAME = "sweep_job"


def sweep_job(resources: dict[str, object] | None = None) -> JobDefinition:
    """The sweep job on ``backtest_executor``, its steps' outputs in ``sweep_io`` (step_io.py).
    Without ``resources`` it needs ``market_data``, ``results_db`` and ``sweep_io`` from the
    ``Definitions`` it is registered in (btpipeline.definitions, this domain's defs())."""

    @job(name=SWEEP_JOB_NAME, executor_def=backtest_executor,
         resource_defs={SWEEP_IO: sweep_step_io, **resources} if resources else {},
         description="Parameter sweep of one strategy on one epic: the grid split into chunks, "
         "one mapped step per chunk on backtest_executor's workers (rows stored in the results "
         "database chunk by chunk), then a ranked table and heatmap.",
         tags={"btpipeline/kind": "sweep"})
    def sweep() -> None:
        chunks, ranking = plan_sweep()
        results = chunks.map(backtest_chunk)
        rank_sweep(results.collect(), ranking)

    return sweep
