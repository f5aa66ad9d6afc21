"""Per-variant reports built from the results database, with no Dagster import.

``data.gather_report_data`` reads one strategy variant's stored results into a
``VariantReportData`` (one calendar, account equity, drawdowns, monthly returns, trades,
metrics, parameters, costs, data range); ``charts`` draws its PNGs (matplotlib, Agg);
``html`` writes the self-contained HTML report; ``markdown`` renders the Dagster asset-page view.
"""

from btpipeline.reports.data import (
    DEFAULT_CAPITAL,
    PORTFOLIO,
    ResultsReader,
    VariantReportData,
    gather_report_data,
)

__all__ = ["DEFAULT_CAPITAL", "PORTFOLIO", "ResultsReader", "VariantReportData",
           "gather_report_data"]
