"""``report/<strategy>``: the metrics table per epic and an equity-curve PNG, as metadata."""

from dagster import AssetExecutionContext, AssetsDefinition, MaterializeResult, MetadataValue, asset

from btpipeline.assets.keys import backtest_key, report_key
from btpipeline.machine.naming import REPORT_PREFIX
from btpipeline.reporting import build_report, plot_equity, png_markdown, render_markdown
from btpipeline.resources.results_database import ResultsDatabase
from btpipeline.settings import btpipeline_home


def report_asset(strategy: str, epics: list[str]) -> AssetsDefinition:
    @asset(
        key=report_key(strategy),
        group_name=REPORT_PREFIX,
        deps=[backtest_key(strategy, epic) for epic in epics],
        description=f"{strategy}: metrics per epic over every stored month, and equity curves.",
        kinds={"pandas"},
    )
    def _report(context: AssetExecutionContext, results_db: ResultsDatabase) -> MaterializeResult:
        report = build_report(results_db, strategy, epics)
        png_path = btpipeline_home() / "reports" / f"{strategy}.png"
        png = plot_equity(report, png_path)
        table = render_markdown(report)
        context.log.info(f"report {strategy}:\n{table}")
        return MaterializeResult(metadata={
            "metrics": MetadataValue.md(table),
            "equity_curve": MetadataValue.md(png_markdown(png, f"{strategy} equity curve")),
            "equity_curve_png": MetadataValue.path(str(png_path)),
            "epics_reported": MetadataValue.int(len(report.table)),
        })

    return _report
