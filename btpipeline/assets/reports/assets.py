"""``report/<strategy>``: the variant's report, inline on the asset page and as an HTML file.

The asset page shows, without clicking through, a metrics table that fits 1,600 px, the
parameters, costs, timeframe, capital and data range, and an equity-and-drawdown chart (each
entry stays under the length Dagster renders inline). The full report, a self-contained HTML
file under the data folder (equity and drawdown, monthly returns, trade list, ...), is linked
from the metadata; ``btpipeline report <strategy> --open`` opens the same file.
"""

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    AutomationCondition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from btpipeline.assets.keys import backtest_key, report_key
from btpipeline.machine.naming import REPORT_PREFIX
from btpipeline.reports.build import write_variant_report
from btpipeline.reports.markdown import asset_markdown, chart_markdown
from btpipeline.resources.results_database import ResultsDatabase

# Rebuild a report once after its backtests change: any backtest partition updated since the
# report was last requested or materialized, and none of them (nor the report) in progress, so
# a backfill of many months triggers one report at its end, not one per month.
REPORT_AUTOMATION = (AutomationCondition.any_deps_updated().since_last_handled()
                     & ~AutomationCondition.any_deps_in_progress()
                     & ~AutomationCondition.in_progress())


def report_asset(strategy: str, epics: list[str]) -> AssetsDefinition:
    @asset(
        key=report_key(strategy),
        group_name=REPORT_PREFIX,
        deps=[backtest_key(strategy, epic) for epic in epics],
        description=f"{strategy}: metrics per instrument over every stored month, equity and "
        "drawdown on the account, and the full HTML report.",
        kinds={"pandas"},
        automation_condition=REPORT_AUTOMATION,
    )
    def _report(context: AssetExecutionContext, results_db: ResultsDatabase) -> MaterializeResult:
        data, path = write_variant_report(results_db, strategy, epics,
                                          source=f"results database {results_db.safe_url}")
        metadata: dict[str, MetadataValue] = {
            key: MetadataValue.md(text) for key, text in asset_markdown(data).items()}
        metadata["report_html"] = MetadataValue.path(str(path))
        if not data.empty:
            metadata["equity_drawdown_png"] = MetadataValue.md(chart_markdown(data))
        metadata["instruments_reported"] = MetadataValue.int(len(data.instruments))
        context.log.info(f"report {strategy}: {len(data.instruments)} instrument(s), "
                         f"HTML at {path}")
        return MaterializeResult(metadata=metadata)

    return _report
