"""The sweeps domain's contribution to btpipeline's Definitions."""

from dagster import Definitions

from btpipeline.assets.sweeps.jobs import sweep_job
from btpipeline.assets.sweeps.sensors import sweep_run_end_sensors
from btpipeline.assets.sweeps.step_io import SWEEP_IO, sweep_step_io


def defs() -> Definitions:
    """``sweep_job``, the IO manager of its steps' outputs and the sensors that end the sweeps
    of a failed or canceled run (its ``market_data`` and ``results_db`` come from the shared
    resources)."""
    return Definitions(jobs=[sweep_job()], resources={SWEEP_IO: sweep_step_io},
                       sensors=sweep_run_end_sensors())
