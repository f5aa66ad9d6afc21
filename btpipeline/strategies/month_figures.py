"""Each month's own figures from a run's fills and daily rows (both with ``partition_key``).

A multi-month run's totals say nothing about any one month; these do. Per month: ``trades``
(closed trades), ``pnl`` (sum of its daily P&L, account currency), ``return`` (that P&L over
the equity at the month's start), ``max_drawdown`` (of its day-end equity, the peak starting
at the month's opening equity) and ``exposure`` (bars in the market / bars). The equity at a
month's start is the initial capital plus the P&L of the run's earlier months: the account
opens at the run's first month (see account.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from btpipeline.strategies.metrics import max_drawdown

MONTH_FIGURES: tuple[str, ...] = ("trades", "pnl", "return", "max_drawdown", "exposure")


def _one_month(pnl: np.ndarray, trades: int, bars: int, in_market: int,
               opening: float) -> dict[str, float]:
    return {
        "trades": float(trades),
        "pnl": float(pnl.sum()),
        "return": float(pnl.sum() / opening) if opening > 0 else 0.0,
        "max_drawdown": max_drawdown(pnl, opening) if opening > 0 else 0.0,
        "exposure": float(in_market / bars) if bars else 0.0,
    }


def month_figures(fills: pd.DataFrame, daily: pd.DataFrame, keys: Sequence[str],
                  capital: float) -> dict[str, dict[str, float]]:
    """``{partition_key: {figure: value}}`` for every key (months without rows get zeros)."""
    closes = fills.loc[fills["action"] == "CLOSE", "partition_key"].value_counts()
    daily = daily.sort_values("day")
    by_month = {key: rows for key, rows in daily.groupby("partition_key", sort=False)}
    figures, equity = {}, float(capital)
    for key in sorted(keys):
        rows = by_month.get(key, daily.iloc[:0])
        pnl = rows["pnl"].to_numpy(dtype=np.float64)
        figures[key] = _one_month(pnl, int(closes.get(key, 0)), int(rows["bars"].sum()),
                                  int(rows["bars_in_market"].sum()), equity)
        equity += float(pnl.sum())
    return figures
