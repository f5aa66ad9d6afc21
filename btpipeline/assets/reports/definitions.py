"""The reports domain's contribution to btpipeline's Definitions."""

from dagster import Definitions

from btpipeline.assets.reports.assets import report_asset
from btpipeline.assets.reports.jobs import reports_job
from btpipeline.universe import Universe


def defs(universe: Universe) -> Definitions:
    """One report asset per variant (over each of its instruments) and ``reports_job``."""
    return Definitions(assets=[report_asset(v, universe.instruments_of(v))
                               for v in universe.variants],
                       jobs=[reports_job()])
