"""The Dagster asset-page view of a report: short markdown that fits a 1,600 px window.

Metrics are transposed (one row per metric, one column per instrument plus the portfolio) so
the table grows downwards, not sideways: with six pairs a line stays under ``MAX_LINE`` chars.
The equity-and-drawdown chart is an inline data-URI image, so it shows without a click.
"""

from __future__ import annotations

import base64
from pathlib import Path

from btpipeline.reports import charts, formatting
from btpipeline.reports.data import VariantReportData

MAX_LINE = 140
CHART_WIDTH_PX = 1100


def metrics_markdown(data: VariantReportData) -> str:
    """Metrics as rows, instruments as columns, numbers rounded."""
    if data.empty:
        return f"No stored results for {data.strategy} yet: materialize its backtests first."
    names = list(data.metrics.index)
    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for column in data.metrics.columns:
        cells = [formatting.metric(column, data.metrics.loc[n, column]) for n in names]
        lines.append(f"| {formatting.METRIC_LABELS.get(column, column)} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _params_text(data: VariantReportData) -> str:
    common = data.common_params()
    if common is not None:
        return ", ".join(f"{k}={v}" for k, v in sorted(common.items())) or "defaults"
    return "; ".join(f"{e}: " + ", ".join(f"{k}={v}" for k, v in sorted(p.items()))
                     for e, p in data.params.items())


def _costs_text(data: VariantReportData) -> str:
    return "; ".join(f"{e} spread {c['spread_pips']} pips, commission "
                     f"{c['commission_per_lot']}/lot, slippage {c['slippage_pips']} pips"
                     for e, c in data.costs.items())


def details_markdown(data: VariantReportData, html_path: Path | None = None) -> str:
    """Parameters, costs, timeframe, capital and data range as a short list."""
    if data.empty:
        return metrics_markdown(data)
    first = min(r.first_day for r in data.data_range.values())
    last = max(r.last_day for r in data.data_range.values())
    months = max(r.months for r in data.data_range.values())
    items = [f"**parameters**: {_params_text(data)}", f"**costs**: {_costs_text(data)}",
             f"**timeframe**: {data.timeframe}", f"**capital**: {data.capital:,.0f} USD",
             f"**data range**: {first} .. {last} ({months} months)",
             f"**instruments**: {', '.join(data.instruments)}",
             f"**trades**: {len(data.trades):,}"]
    if html_path is not None:
        items.append(f"**full report**: `{html_path}` (`btpipeline report {data.strategy} "
                     "--open`)")
    return "\n".join(f"- {item}" for item in items) + "\n"


def image_markdown(png: bytes, alt: str) -> str:
    """An inline image the Dagster UI's markdown metadata renders."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def asset_markdown(data: VariantReportData, html_path: Path | None = None) -> dict[str, str]:
    """The asset page's markdown entries by metadata key: metrics, details, equity chart."""
    parts = {"metrics": metrics_markdown(data), "details": details_markdown(data, html_path)}
    if not data.empty:
        png = charts.equity_drawdown_png(data, width_px=CHART_WIDTH_PX)
        parts["equity_drawdown"] = image_markdown(png, f"{data.strategy} equity and drawdown")
    return parts
