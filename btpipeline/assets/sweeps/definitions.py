"""The sweeps domain's contribution to btpipeline's Definitions."""

from dagster import Definitions

from btpipeline.assets.sweeps.jobs import sweep_job


def defs() -> Definitions:
    """``sweep_job`` (its ``market_data`` resource comes from the shared resources)."""
    return Definitions(jobs=[sweep_job()])
