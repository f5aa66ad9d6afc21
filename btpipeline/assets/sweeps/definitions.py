"""The sweeps domain's contribution to btpipeline's Definitions."""

from dagster import Definitions

from btpipeline.assets.sweeps.jobs import sweep_job
from btpipeline.assets.sweeps.step_io import SWEEP_IO, sweep_step_io


def defs() -> Definitions:
    """``sweep_job`` and the IO manager of its steps' outputs (its ``market_data`` and
    ``results_db`` come from the shared resources)."""
    return Definitions(jobs=[sweep_job()], resources={SWEEP_IO: sweep_step_io})
