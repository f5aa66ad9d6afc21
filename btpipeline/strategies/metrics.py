"""Performance metrics from daily P&L and closed-trade P&L, on account equity.

Works equally on one run's ``daily`` table and on daily rows read back from the results
database across many partitions (the report aggregates them this way), because every input
is a plain sum or sequence: nothing depends on bar-level data.

Conventions (the README's "Account and metrics" states them for users):

* Amounts are in the account currency. Equity starts at ``capital`` (the account's initial
  capital) and moves by the cumulative daily P&L.
* A day's return is its P&L over the equity at the start of that day (the previous day's
  closing equity); ``total_return`` is final equity / ``capital`` - 1.
* Trading days: P&L of bars on a Saturday or Sunday (UTC) belongs to the next Monday, so a
  Sunday-evening stub is part of Monday's trading day, not a day of its own. Without ``days``
  each value is taken as one trading day.
* ``sharpe`` = mean/std (ddof=1) of trading-day returns times sqrt(252); ``sortino`` = mean /
  downside deviation (root mean square of the negative daily returns, over all days) times
  sqrt(252); both are 0.0 when undefined (fewer than two days, or zero dispersion / no losing
  day).
* ``max_drawdown`` is a positive fraction of the running peak of end-of-day equity (the peak
  starts at ``capital``).
* ``profit_factor`` = gross profit / gross loss: ``float('inf')`` when there are winning trades
  and no losing ones (JSON-safe callers should map it, e.g. to null), 0.0 when there are no
  winners. ``expectancy`` is the mean closed-trade P&L in the account currency; ``pnl`` the
  total P&L. Every value is a Python float.
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


def trading_days(days: Sequence[str] | np.ndarray) -> np.ndarray:
    """The trading day (``datetime64[D]``) of each UTC date: Saturday and Sunday move to the
    following Monday."""
    dates = np.asarray(days, dtype="datetime64[D]")
    weekday = (dates.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    return dates + np.where(weekday >= 5, 7 - weekday, 0).astype("timedelta64[D]")


def by_trading_day(daily_pnl: np.ndarray, days: Sequence[str] | np.ndarray | None) -> np.ndarray:
    """Daily P&L summed per trading day (input in time order)."""
    if days is None or daily_pnl.shape[0] == 0:
        return daily_pnl
    label = trading_days(days)
    starts = np.concatenate([[0], np.flatnonzero(label[1:] != label[:-1]) + 1])
    return np.add.reduceat(daily_pnl, starts)


def equity_returns(daily_pnl: np.ndarray, capital: float) -> np.ndarray:
    """Each day's P&L over the equity at its start (0 where that equity is not positive)."""
    start = capital + np.concatenate([[0.0], np.cumsum(daily_pnl)[:-1]])
    return np.divide(daily_pnl, start, out=np.zeros_like(daily_pnl), where=start > 0)


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


def compute_metrics(daily_pnl: Sequence[float] | np.ndarray,
                    trade_pnls: Sequence[float] | np.ndarray, *, capital: float,
                    bars: int, bars_in_market: int,
                    days: Sequence[str] | np.ndarray | None = None) -> dict[str, float]:
    """total_return, sharpe, sortino, max_drawdown, win_rate, profit_factor, expectancy,
    num_trades, exposure (``bars_in_market / bars``, 0.0 without bars), pnl. ``days`` are the
    UTC dates ('YYYY-MM-DD') of ``daily_pnl``, used to fold weekend stubs into trading days."""
    if not (math.isfinite(capital) and capital > 0):
        raise InvalidParameterError(
            f"Invalid parameter 'capital': expected a finite number > 0, got {capital!r}. "
            "Fix: pass the account's initial capital.")
    pnl = by_trading_day(np.asarray(daily_pnl, dtype=np.float64), days)
    returns = equity_returns(pnl, capital)
    return {
        "total_return": float(pnl.sum() / capital),
        "sharpe": sharpe(returns),
        "sortino": sortino(returns),
        "max_drawdown": max_drawdown(pnl, capital),
        **trade_stats(np.asarray(trade_pnls, dtype=np.float64)),
        "exposure": float(bars_in_market / bars) if bars > 0 else 0.0,
        "pnl": float(pnl.sum()),
    }
