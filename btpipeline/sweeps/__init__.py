"""Strategy parameter sweeps, plain Python: grid parsing and validation (``grid``), the tasks
and the per-combination runner (``spec``), ranking (``ranking``). The Dagster fan-out job,
``sweep_job``, is in btpipeline.assets.sweeps."""

from btpipeline.sweeps.grid import MAX_COMBINATIONS, Combination, expand_grid, parse_grid
from btpipeline.sweeps.ranking import markdown_top, rank_results
from btpipeline.sweeps.spec import SweepSpec, SweepTask, build_spec, run_task

__all__ = [
    "MAX_COMBINATIONS", "Combination", "SweepSpec", "SweepTask", "build_spec", "expand_grid",
    "markdown_top", "parse_grid", "rank_results", "run_task",
]
