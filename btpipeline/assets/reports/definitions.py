"""The reports domain's contribution to btpipeline's Definitions."""

from dagster import Definitions

from btpipeline import universe
from btpipeline.assets.reports.assets import report_asset
from btpipeline.assets.reports.jobs import reports_job


def defs() -> Definitions:
    """One report asset per strategy (over every epic) and ``reports_job``."""
    epics = universe.epics()
    return Definitions(assets=[report_asset(s, epics) for s in universe.strategies()],
                       jobs=[reports_job()])
