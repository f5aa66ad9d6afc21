"""Performance metrics from daily P&L and closed-trade P&L.

Works equally on one run's ``daily`` table and on daily rows read back from the results
database across many partitions (the report aggregates them this way), because every input
is a plain sum or sequence: nothing depends on bar-level data.

Conventions: returns are P&L / ``capital``. ``sharpe`` = mean/std (ddof=1) of daily returns
times sqrt(252); ``sortino`` = mean / downside deviation (root mean square of the negative
daily returns, over all days) times sqrt(252); both are 0.0 when undefined (fewer than two
days, or zero dispersion / no losing day). ``max_drawdown`` is a positive fraction of the
running peak of end-of-day equity (``capital`` + cumulative P&L; the peak starts at
``capital``). ``profit_factor`` = gross profit / gross loss: ``float('inf')`` when there are
winning trades and no losing ones (JSON-safe callers should map it, e.g. to null), 0.0 when
there are no winners. Every value is a Python float.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from btpipeline.errors import InvalidParameterError

TRADING_DAYS = 252


def _ratio(mean: float, dispersion: float) -> float:
    if not dispersion > 0 or not math.isfinite(dispersion):
        return 0.0
    return float(mean / dispersion * math.sqrt(TRADING_DAYS))


def sharpe(returns: np.ndarray) -> float:
    if returns.shape[0] < 2:
        return 0.0
    return _ratio(float(returns.mean()), float(returns.std(ddof=1)))


def sortino(returns: np.ndarray) -> float:
    if returns.shape[0] < 2:
        return 0.0
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    return _ratio(float(returns.mean()), downside)


def max_drawdown(daily_pnl: np.ndarray, capital: float) -> float:
    equity = capital + np.cumsum(daily_pnl)
    peak = np.maximum.accumulate(np.concatenate([[capital], equity]))[1:]
    return float(np.max((peak - equity) / peak)) if equity.size else 0.0


def trade_stats(trade_pnls: np.ndarray) -> dict[str, float]:
    n = trade_pnls.shape[0]
    gains = float(trade_pnls[trade_pnls > 0].sum())
    losses = float(-trade_pnls[trade_pnls < 0].sum())
    if losses > 0:
        factor = gains / losses
    else:
        factor = math.inf if gains > 0 else 0.0
    return {
        "win_rate": float((trade_pnls > 0).sum() / n) if n else 0.0,
        "profit_factor": factor,
        "expectancy": float(trade_pnls.mean()) if n else 0.0,
        "num_trades": float(n),
    }


def compute_metrics(daily_pnl: Sequence[float], trade_pnls: Sequence[float], *, capital: float,
                    bars: int, bars_in_market: int) -> dict[str, float]:
    """total_return, sharpe, sortino, max_drawdown, win_rate, profit_factor, expectancy,
    num_trades, exposure (``bars_in_market / bars``, 0.0 without bars)."""
    if not (math.isfinite(capital) and capital > 0):
        raise InvalidParameterError(
            f"Invalid parameter 'capital': expected a finite number > 0, got {capital!r}. "
            "Fix: pass size_units * the epic's reference_price.")
    pnl = np.asarray(daily_pnl, dtype=np.float64)
    returns = pnl / capital
    return {
        "total_return": float(pnl.sum() / capital),
        "sharpe": sharpe(returns),
        "sortino": sortino(returns),
        "max_drawdown": max_drawdown(pnl, capital),
        **trade_stats(np.asarray(trade_pnls, dtype=np.float64)),
        "exposure": float(bars_in_market / bars) if bars > 0 else 0.0,
    }
