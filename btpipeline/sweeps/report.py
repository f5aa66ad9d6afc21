"""A sweep's self-contained HTML file: what was swept, the heatmap of two parameters, and the
ranked table (sortable), in the style of the variant reports (btpipeline/reports/html.py)."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from btpipeline.reports.html import SORT_SCRIPT, STYLE
from btpipeline.sweeps.ranking import cell


def _settings(sweep: Mapping[str, Any]) -> str:
    items = "".join(f"<dt>{escape(str(k))}</dt><dd>{escape(str(v))}</dd>"
                    for k, v in sweep.items())
    return f"<section><h2>Sweep</h2><dl>{items}</dl></section>"


def _table(table: pd.DataFrame, columns: Sequence[str]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = []
    for row in table.to_dict("records"):
        cells = "".join(f'<td data-sort="{escape(str(row[c]))}">{escape(cell(c, row[c]))}'
                        "</td>" for c in columns)
        body.append(f"<tr>{cells}</tr>")
    return (f'<section><h2>Ranked combinations</h2><div class="scroll tall"><table '
            f'class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody>'
            "</table></div></section>")


def write_report(path: Path, *, title: str, sweep: Mapping[str, Any], table: pd.DataFrame,
                 columns: Sequence[str], heatmap_png: bytes | None) -> Path:
    """Write the HTML file to ``path`` (folders created) and return it."""
    image = ""
    if heatmap_png is not None:
        data = base64.b64encode(heatmap_png).decode()
        image = f'<section><h2>Heatmap</h2><img alt="heatmap" src="data:image/png;base64,{data}">' \
                "</section>"
    page = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}"
            f"</title><style>{STYLE}</style></head><body><main><h1>{escape(title)}</h1>"
            f"{_settings(sweep)}{image}{_table(table, columns)}</main>"
            f"<script>{SORT_SCRIPT}</script></body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
