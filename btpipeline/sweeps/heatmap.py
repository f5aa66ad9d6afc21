"""A sweep of two parameters as a heatmap: a small PNG (inline in the UI as a data URI, which
Dagster renders only for markdown under ~1,000 characters), a larger one for the HTML report,
and a compact text table for when the PNG does not fit.

Cells are the ``metric`` of each (row, column) pair; with more swept parameters the cell
shows the best value over the others (max, or min for lower-is-better metrics).
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd

from btpipeline.reports.pyplot import pyplot
from btpipeline.sweeps.spec import LOWER_IS_BETTER

INLINE_LIMIT = 1_000


def pivot(table: pd.DataFrame, rows: str, columns: str, metric: str) -> pd.DataFrame:
    """``metric`` by ``rows`` x ``columns`` (best value where other parameters vary)."""
    how = "min" if metric in LOWER_IS_BETTER else "max"
    return table.pivot_table(index=rows, columns=columns, values=metric, aggfunc=how)


def heatmap_png(grid: pd.DataFrame, metric: str, *, inches: tuple[float, float] = (6, 4.5),
                dpi: int = 100, labels: bool = True) -> bytes:
    """``grid`` (from ``pivot``) as a PNG heatmap."""
    plt = pyplot()
    fig, axis = plt.subplots(figsize=inches, dpi=dpi)
    image = axis.imshow(grid.to_numpy(dtype=float), cmap="RdYlGn", aspect="auto",
                        origin="lower")
    if labels:
        axis.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns])
        axis.set_yticks(range(grid.shape[0]), [str(r) for r in grid.index])
        axis.set_xlabel(str(grid.columns.name))
        axis.set_ylabel(str(grid.index.name))
        axis.set_title(metric)
        fig.colorbar(image, ax=axis)
    else:
        axis.set_axis_off()
        fig.subplots_adjust(0, 0, 1, 1)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def _cell_png(grid: pd.DataFrame, scale: int) -> bytes:
    """One ``scale`` x ``scale`` block of pixels per cell (row 0 at the bottom), no axes:
    blocks of equal colour compress to a few hundred bytes."""
    values = grid.to_numpy(dtype=float)[::-1]
    finite = np.isfinite(values)
    low, high = (values[finite].min(), values[finite].max()) if finite.any() else (0.0, 1.0)
    scaled = np.where(finite, (values - low) / ((high - low) or 1.0), 0.5)
    image = np.kron(scaled, np.ones((scale, scale)))
    buffer = io.BytesIO()
    pyplot().imsave(buffer, image, cmap="RdYlGn", vmin=0.0, vmax=1.0, format="png")
    return buffer.getvalue()


def inline_markdown(grid: pd.DataFrame, metric: str) -> str:
    """The heatmap as markdown under ``INLINE_LIMIT`` characters: the largest block PNG that
    fits (rows: the first parameter, bottom up; columns: the second), else a text table."""
    for scale in (12, 8, 6, 4, 3, 2, 1):
        data = base64.b64encode(_cell_png(grid, scale)).decode()
        image = f"![{metric} by {grid.index.name} x {grid.columns.name}](data:image/png;" \
                f"base64,{data})"
        if len(image) < INLINE_LIMIT:
            return image
    for digits in (2, 1, 0):
        text = text_table(grid, digits)
        if len(text) < INLINE_LIMIT:
            return text
    best = grid.stack().sort_values(ascending=metric in LOWER_IS_BETTER)
    lines = [f"best {metric} ({grid.index.name}, {grid.columns.name}): see the report"]
    for (row, column), value in best.items():
        line = f"- {row}, {column}: {value:.3f}"
        if len("\n".join([*lines, line])) >= INLINE_LIMIT:
            break
        lines.append(line)
    return "\n".join(lines)


def text_table(grid: pd.DataFrame, digits: int = 2) -> str:
    """The pivot as a markdown table (rows: index, columns: the other parameter)."""
    head = f"| {grid.index.name} \\ {grid.columns.name} | " + " | ".join(
        str(c) for c in grid.columns) + " |"
    lines = [head, "|" + "---|" * (grid.shape[1] + 1)]
    for label, values in grid.iterrows():
        lines.append(f"| {label} | " + " | ".join(f"{v:.{digits}f}" for v in values) + " |")
    return "\n".join(lines)
