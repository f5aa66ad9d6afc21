"""The reports domain's contribution to btpipeline's Definitions."""

from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    Definitions,
)

from btpipeline.assets.reports.assets import report_asset
from btpipeline.assets.reports.jobs import reports_job
from btpipeline.machine.naming import REPORT_PREFIX
from btpipeline.universe import Universe


def defs(universe: Universe) -> Definitions:
    """One report asset per variant (over each of its instruments), ``reports_job``, and the
    declarative-automation sensor that rebuilds a report after its backtests change."""
    return Definitions(assets=[report_asset(v, universe.instruments_of(v))
                               for v in universe.variants],
                       jobs=[reports_job()], sensors=[reports_automation_sensor()])


def reports_automation_sensor() -> AutomationConditionSensorDefinition:
    """Evaluates the reports' automation condition (``REPORT_AUTOMATION``) every 30 s while the
    daemon runs (``dagster dev`` starts one); on by default, switch it off in the UI
    (**Automation**) to rebuild reports only by hand."""
    return AutomationConditionSensorDefinition(
        "reports_automation", target=AssetSelection.key_prefixes([REPORT_PREFIX]),
        default_status=DefaultSensorStatus.RUNNING, minimum_interval_seconds=30,
        description="Materializes report/<variant> once its backtests changed and none runs.")
