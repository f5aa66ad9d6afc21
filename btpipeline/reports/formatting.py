"""How the report shows numbers: shared by the HTML and the markdown views."""

from __future__ import annotations

import math

import pandas as pd

PERCENT_METRICS = frozenset({"total_return", "max_drawdown", "win_rate", "exposure"})
COUNT_METRICS = frozenset({"months", "num_trades"})
METRIC_LABELS = {
    "months": "months", "num_trades": "trades", "total_return": "return",
    "sharpe": "Sharpe", "sortino": "Sortino", "max_drawdown": "max DD",
    "win_rate": "win rate", "profit_factor": "profit factor", "expectancy": "expectancy",
    "exposure": "exposure", "pnl": "P&L",
}


def metric(name: str, value: float, percent_digits: int = 2, percent_sign: bool = True) -> str:
    """``value`` of metric ``name`` rounded for reading: %, counts, or 2 decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if name in COUNT_METRICS:
        return f"{int(value):,}"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if name in PERCENT_METRICS:
        text = f"{value:.{percent_digits}%}"
        return text if percent_sign else text[:-1]
    return f"{value:,.2f}"


def money(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.2f}"


def price(value: float) -> str:
    """5 decimals below 10 (EURUSD 1.10345), 3 above (USDJPY 150.123)."""
    if math.isnan(value):
        return "n/a"
    return f"{value:.5f}" if abs(value) < 10 else f"{value:.3f}"


def timestamp(value: pd.Timestamp) -> str:
    return "before range" if pd.isna(value) else value.strftime("%Y-%m-%d %H:%M")


def day(value: pd.Timestamp, missing: str = "n/a") -> str:
    return missing if pd.isna(value) else value.strftime("%Y-%m-%d")


def duration(value: pd.Timedelta) -> str:
    """``3d 04:05`` style; n/a when the entry is before the stored range."""
    if pd.isna(value):
        return "n/a"
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    text = f"{rest // 60:02d}:{rest % 60:02d}"
    return f"{days}d {text}" if days else text
