"""Position size as a fraction of account equity.

Each new position's notional, in the account currency, is ``fraction`` x the equity at the
close of the bar before its entry (so at the moment the order is decided): ``fraction *
equity / open`` base units when the account currency is the quote (EURUSD in USD), ``fraction
* equity`` units when it is the base (USDJPY in USD). The size then stays fixed until the
position closes. Positions opened in the warm-up, before the account opens, are sized on the
initial capital. Trades themselves (when and which way) do not depend on the size.

Equity depends on earlier trades' sizes, so sizes are found trade by trade; each bar's P&L is
computed once, with numpy, over the stretch between two entries.
"""

from __future__ import annotations

import math

import numpy as np

from btpipeline.data.candles import Candles
from btpipeline.epics import Epic
from btpipeline.errors import InvalidParameterError
from btpipeline.strategies.account import Account
from btpipeline.strategies.costs import CostModel
from btpipeline.strategies.simulator import held_positions


def check_fraction(fraction: float) -> float:
    if not (isinstance(fraction, (int, float)) and math.isfinite(fraction) and fraction > 0):
        raise InvalidParameterError(
            f"Invalid parameter 'equity_fraction': expected a finite number > 0, got "
            f"{fraction!r}. Fix: pass e.g. 1.0 (notional = equity) or 5.0 (5x leverage).")
    return float(fraction)


class _Book:
    """Per-bar unit P&L pieces; ``pnl(a, b, size)`` is bars [a, b) in the account currency."""

    def __init__(self, candles: Candles, pos: np.ndarray, costs: CostModel, epic: Epic,
                 account: Account) -> None:
        open_ = np.asarray(candles.open, dtype=np.float64)
        close = np.asarray(candles.close, dtype=np.float64)
        prev_close = np.concatenate([open_[:1], close[:-1]])
        prev = np.concatenate([np.zeros(1, np.int8), pos[:-1]])
        self.open = open_
        self.gap = prev * (open_ - prev_close)
        self.body = pos * (close - open_)
        self.closes = ((pos != prev) & (prev != 0)).astype(np.float64)
        self.opens = ((pos != prev) & (pos != 0)).astype(np.float64)
        self.rate = np.ones_like(close) if account.currency == epic.quote_currency else close
        self.quote_account = account.currency == epic.quote_currency
        self.costs = costs

    def pnl(self, a: int, b: int, size: np.ndarray) -> float:
        cur = size[a:b]
        before = size[a - 1:b - 1] if a > 0 else np.concatenate([[0.0], size[:b - 1]])
        fill_cost = self.costs.price_offset
        quote = (self.gap[a:b] * before + self.body[a:b] * cur
                 - self.closes[a:b] * (before * fill_cost + self.costs.commission(before))
                 - self.opens[a:b] * (cur * fill_cost + self.costs.commission(cur)))
        return float(np.sum(quote / self.rate[a:b]))

    def units(self, notional: float, bar: int) -> float:
        return notional / self.open[bar] if self.quote_account else notional


def equity_fraction_sizes(candles: Candles, targets: np.ndarray, *, first_bar: int,
                          fraction: float, costs: CostModel, epic: Epic,
                          account: Account) -> np.ndarray:
    """Size of the position held during each bar (0 when flat); see the module docstring."""
    pos = held_positions(np.asarray(targets, dtype=np.int8))
    book = _Book(candles, pos, costs, epic, account)
    changes = np.flatnonzero(pos != np.concatenate([np.zeros(1, np.int8), pos[:-1]]))
    size = np.zeros(pos.shape[0])
    equity, counted = account.initial_capital, first_bar
    for k, entry in enumerate(changes):
        if pos[entry] == 0:
            continue
        if entry > counted:
            equity += book.pnl(counted, int(entry), size)
            counted = int(entry)
        exit_ = int(changes[k + 1]) if k + 1 < changes.shape[0] else pos.shape[0]
        size[entry:exit_] = book.units(fraction * max(equity, 0.0), int(entry))
    return size
