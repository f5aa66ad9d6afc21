"""The report's figures as PNG bytes (matplotlib, Agg backend: no display needed).

Sized in inches at ``DPI`` so the default width is ~1,500 px: it fits a 1,600 px window
beside the page margins, and the HTML scales it down (max-width: 100%) on narrower ones.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from btpipeline.reports.data import PORTFOLIO, VariantReportData, year_by_month
from btpipeline.reports.pyplot import pyplot

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
WIDTH_PX = 1500


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    pyplot().close(fig)
    return buffer.getvalue()


def _curve_styles(columns: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """Instruments thin, the portfolio thick and black on top."""
    styles: list[tuple[str, dict[str, Any]]] = [
        (c, {"linewidth": 1.0, "alpha": 0.8}) for c in columns if c != PORTFOLIO]
    if PORTFOLIO in columns:
        styles.append((PORTFOLIO, {"linewidth": 2.0, "color": "black"}))
    return styles


def equity_drawdown_png(data: VariantReportData, width_px: int = WIDTH_PX) -> bytes:
    """Account equity (top) and drawdown in % (bottom), sharing the calendar axis."""
    fig, (top, bottom) = pyplot().subplots(
        2, 1, sharex=True, figsize=(width_px / DPI, width_px / DPI * 0.42),
        gridspec_kw={"height_ratios": [2.2, 1]}, layout="constrained")
    for column, style in _curve_styles(list(data.equity.columns)):
        top.plot(data.equity.index, data.equity[column], label=column, **style)
        bottom.plot(data.drawdown.index, data.drawdown[column] * 100, **style)
    top.axhline(data.capital, color="grey", linewidth=0.8, linestyle="--")
    top.set_title(f"{data.strategy}: account equity (capital {data.capital:,.0f}) and drawdown")
    top.set_ylabel("equity")
    top.legend(loc="upper left", fontsize=8, ncols=min(len(data.equity.columns), 7))
    if PORTFOLIO in data.drawdown.columns:
        bottom.fill_between(data.drawdown.index, data.drawdown[PORTFOLIO] * 100, 0,
                            color="tab:red", alpha=0.25)
    bottom.set_ylabel("drawdown %")
    for axis in (top, bottom):
        axis.grid(alpha=0.3)
    return _png(fig)


def monthly_heatmap_png(data: VariantReportData, column: str = PORTFOLIO,
                        width_px: int = WIDTH_PX) -> bytes:
    """quantstats-style heatmap of ``column``'s monthly returns: years x months, in %."""
    table = year_by_month(data.monthly_returns[column]) * 100
    height = max(1.6, 0.45 * len(table) + 1.1)
    fig, axis = pyplot().subplots(figsize=(width_px / DPI, height), layout="constrained")
    values = table.to_numpy(dtype=float)
    limit = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    image = axis.imshow(values, cmap="RdYlGn", vmin=-limit or -1, vmax=limit or 1, aspect="auto")
    _annotate(axis, table)
    axis.set_xticks(range(12), list(table.columns))
    axis.set_yticks(range(len(table)), [str(y) for y in table.index])
    axis.set_title(f"{data.strategy}: monthly returns, % of capital ({column})")
    fig.colorbar(image, ax=axis, fraction=0.02, pad=0.01)
    return _png(fig)


def _annotate(axis: Axes, table: pd.DataFrame) -> None:
    for row, year in enumerate(table.index):
        for col, month in enumerate(table.columns):
            value = table.loc[year, month]
            if np.isfinite(value):
                axis.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=9)
