"""Ranking a sweep's result rows and rendering the top of the table as markdown."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from btpipeline.sweeps.spec import LOWER_IS_BETTER

_PERCENT = frozenset({"total_return", "max_drawdown", "win_rate", "exposure"})
_SHOWN_METRICS = ("total_return", "sharpe", "sortino", "max_drawdown", "win_rate",
                  "profit_factor", "num_trades")


def rank_results(rows: Sequence[dict[str, Any]], rank_by: str) -> pd.DataFrame:
    """One row per combination, best first by ``rank_by`` (ties keep grid order), with a
    1-based ``rank`` column in front."""
    table = pd.DataFrame(list(rows))
    table = table.sort_values("index" if "index" in table else "combination", kind="stable")
    ascending = rank_by in LOWER_IS_BETTER
    table = table.sort_values(rank_by, ascending=ascending, kind="stable").reset_index(drop=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    return table


def cell(column: str, value: object) -> str:
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        if column in _PERCENT:
            return f"{value * 100:.2f} %"
        return f"{value:.0f}" if column == "num_trades" else f"{value:.3f}"
    return str(value)


def markdown_top(table: pd.DataFrame, grid_fields: Sequence[str], top_n: int) -> str:
    """The first ``top_n`` rows: rank, the grid's parameters and the main metrics."""
    columns = ["rank", *grid_fields, *_SHOWN_METRICS]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in table.head(top_n).to_dict("records"):  # keeps int columns int, unlike iterrows
        lines.append("| " + " | ".join(cell(c, row[c]) for c in columns) + " |")
    return "\n".join(lines)
