"""Strategy parameter sweeps: grid parsing and validation (``grid``), the tasks and the
per-combination runner (``spec``), ranking (``ranking``) and the Dagster fan-out job
(``job``: ``sweep_job``, registered in btpipeline.definitions)."""

from btpipeline.sweeps.grid import MAX_COMBINATIONS, Combination, expand_grid, parse_grid
from btpipeline.sweeps.job import SWEEP_JOB_NAME, SweepConfig, sweep_job, sweep_job_def
from btpipeline.sweeps.ranking import markdown_top, rank_results
from btpipeline.sweeps.spec import SweepSpec, SweepTask, build_spec, run_task

__all__ = [
    "MAX_COMBINATIONS", "SWEEP_JOB_NAME", "Combination", "SweepConfig", "SweepSpec",
    "SweepTask", "build_spec", "expand_grid", "markdown_top", "parse_grid", "rank_results",
    "run_task", "sweep_job", "sweep_job_def",
]
