"""The Dagster asset-page view of a report: short markdown that fits a 1,600 px window.

Dagster renders a markdown metadata value inline only when it is shorter than 1,000
characters (``INLINE_LIMIT``; longer ones hide behind "[Show Markdown]"), so every entry of
``asset_markdown`` stays below it. Metrics are transposed (one row per metric, one column per
instrument plus the portfolio): the table grows downwards, not sideways, and with six pairs a
line stays under ``MAX_LINE`` characters. The equity-and-drawdown chart is a small SVG
(``sparkline``); the full PNG (``chart_markdown``) is too long to show inline.
"""

from __future__ import annotations

import base64

from btpipeline.reports import charts, formatting
from btpipeline.reports.data import PORTFOLIO, VariantReportData
from btpipeline.reports.sparkline import sparkline_markdown

MAX_LINE = 140
INLINE_LIMIT = 1000
CHART_WIDTH_PX = 1100
SHORT_LABELS = {"total_return": "return %", "sharpe": "Sharpe", "max_drawdown": "max DD %",
                "win_rate": "win %", "profit_factor": "PF", "num_trades": "trades",
                "exposure": "exposure %"}
# The rows of the compact table; the HTML report has every metric.
SHOWN_METRICS = ("total_return", "sharpe", "max_drawdown", "win_rate", "profit_factor",
                 "num_trades", "exposure")


def metrics_markdown(data: VariantReportData) -> str:
    """Metrics as rows, instruments as columns, numbers rounded; the % sign sits in the row
    label, not in every cell (seven columns of Dagster's ~560 px value cell need the room)."""
    if data.empty:
        return f"No stored results for {data.strategy} yet: materialize its backtests first."
    names = list(data.metrics.index)
    lines = ["| | " + " | ".join(names) + " |", "|-|" + "-:|" * len(names)]
    for column in [c for c in SHOWN_METRICS if c in data.metrics.columns]:
        cells = [formatting.metric(column, data.metrics.loc[n, column], percent_digits=1,
                                   percent_sign=False) for n in names]
        label = SHORT_LABELS.get(column, column)
        lines.append(f"| {label} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _params_text(data: VariantReportData) -> str:
    common = data.common_params()
    if common is not None:
        return ", ".join(f"{k}={v}" for k, v in sorted(common.items())) or "defaults"
    return "; ".join(f"{e}: " + ", ".join(f"{k}={v}" for k, v in sorted(p.items()))
                     for e, p in data.params.items())


def _costs_text(data: VariantReportData) -> str:
    """Spread per pair; commission and slippage once when every pair has the same."""
    spreads = ", ".join(f"{e} {c['spread_pips']:g}" if "spread_pips" in c else f"{e} ?"
                        for e, c in data.costs.items())
    parts = [f"spread {spreads} pips"]
    for key, unit in (("commission_per_lot", "/lot"), ("slippage_pips", " pips")):
        values = {c.get(key) for c in data.costs.values()}
        shown = f"{next(iter(values)):g}{unit}" if len(values) == 1 and None not in values \
            else "per pair (see HTML)"
        parts.append(f"{key.split('_')[0]} {shown}")
    return "; ".join(parts)


def details_markdown(data: VariantReportData) -> str:
    """Parameters, costs, timeframe, capital and data range as a short list."""
    if data.empty:
        return metrics_markdown(data)
    first = min(r.first_day for r in data.data_range.values())
    last = max(r.last_day for r in data.data_range.values())
    months = max(r.months for r in data.data_range.values())
    items = [f"**parameters**: {_params_text(data)}", f"**costs**: {_costs_text(data)}",
             f"**timeframe**: {data.timeframe}; **capital**: {data.capital:,.0f} {data.currency}",
             f"**data**: {first} .. {last} ({months} months), {len(data.trades):,} trades",
             f"**HTML**: `btpipeline report {data.strategy} --open`"]
    return "\n".join(f"- {item}" for item in items) + "\n"


def image_markdown(png: bytes, alt: str) -> str:
    """An inline image the Dagster UI's markdown metadata renders."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def chart_markdown(data: VariantReportData) -> str:
    """The full equity-and-drawdown PNG as a markdown image (longer than ``INLINE_LIMIT``:
    Dagster shows it behind "[Show Markdown]")."""
    png = charts.equity_drawdown_png(data, width_px=CHART_WIDTH_PX)
    return image_markdown(png, f"{data.strategy} equity and drawdown")


def asset_markdown(data: VariantReportData) -> dict[str, str]:
    """The asset page's inline markdown entries by metadata key, each < ``INLINE_LIMIT``
    characters: metrics, details and (with results) the equity-and-drawdown sparkline."""
    parts = {"metrics": metrics_markdown(data), "details": details_markdown(data)}
    if not data.empty:
        parts["equity_drawdown"] = sparkline_markdown(
            data.equity[PORTFOLIO], data.drawdown[PORTFOLIO], data.capital,
            f"{data.strategy} portfolio equity (black) and drawdown (red)")
    return parts
