"""The trading account a backtest runs in: initial capital, account currency, stop-out.

Conventions (also in the README, "Account and metrics"):

* The account opens with ``initial_capital`` at the first bar of the run's range; a position
  carried in from the warm-up is part of it from that bar on. Equity = initial capital +
  cumulative P&L in the account currency, marked to market at each bar's close.
* P&L is made in the pair's quote currency. When the account currency is the quote currency
  it is taken as is; when it is the base currency (USDJPY in a USD account) it is divided by
  the rate: a closed trade's P&L by its closing fill's price, a bar's mark-to-market P&L by
  that bar's close. A cross without the account currency (EURGBP in a USD account) is
  refused: converting it needs a third rate the backtest of one pair does not have.
* When equity at a bar's close is at or below ``stop_out_level * initial_capital`` the
  strategy stops trading: any open position is closed at the next bar's open and nothing is
  opened again in that run. The fills before the stop are those of a run without an account.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from btpipeline.epics import Epic
from btpipeline.errors import InvalidParameterError

DEFAULT_CAPITAL = 100_000.0
DEFAULT_CURRENCY = "USD"


@dataclass(frozen=True)
class Account:
    """``stop_out_level`` is a fraction of ``initial_capital`` in [0, 1): 0 stops when the
    account has lost everything, 0.5 when it has lost half."""

    initial_capital: float = DEFAULT_CAPITAL
    currency: str = DEFAULT_CURRENCY
    stop_out_level: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.initial_capital) and self.initial_capital > 0):
            raise InvalidParameterError(
                f"Invalid parameter 'initial_capital': expected a finite number > 0, got "
                f"{self.initial_capital!r}. Fix: pass the account's starting equity, e.g. 100000.")
        if not (isinstance(self.currency, str) and len(self.currency) == 3
                and self.currency.isalpha() and self.currency.isupper()):
            raise InvalidParameterError(
                f"Invalid parameter 'currency': expected a 3-letter ISO code such as 'USD', got "
                f"{self.currency!r}. Fix: pass the account currency in upper case.")
        if not (math.isfinite(self.stop_out_level) and 0.0 <= self.stop_out_level < 1.0):
            raise InvalidParameterError(
                f"Invalid parameter 'stop_out_level': expected a fraction of the initial capital "
                f"in [0, 1), got {self.stop_out_level!r}. Fix: pass e.g. 0.0 (stop when the "
                "account is empty) or 0.5 (stop at half the capital).")

    @property
    def stop_out_equity(self) -> float:
        return self.stop_out_level * self.initial_capital

    def check_pair(self, epic: Epic) -> None:
        """Refuse a pair whose P&L cannot be converted with its own rate."""
        if self.currency not in (epic.base_currency, epic.quote_currency):
            raise InvalidParameterError(
                f"Cannot convert {epic.name} P&L (in {epic.quote_currency}) into a "
                f"{self.currency} account: expected the account currency to be one of the "
                f"pair's currencies ({epic.base_currency}, {epic.quote_currency}), got "
                f"{self.currency}. Fix: use a {epic.quote_currency} or {epic.base_currency} "
                "account for this pair.")

    def to_account(self, epic: Epic, pnl_quote: np.ndarray, rate: np.ndarray) -> np.ndarray:
        """``pnl_quote`` (quote currency) in the account currency at ``rate`` (the pair's
        price where each amount was realised)."""
        self.check_pair(epic)
        pnl = np.asarray(pnl_quote, dtype=np.float64)
        if self.currency == epic.quote_currency:
            return pnl
        return pnl / np.asarray(rate, dtype=np.float64)


def stop_out_bar(bar_pnl: np.ndarray, account: Account) -> int | None:
    """Index of the first bar whose closing equity is at or below the stop-out level."""
    equity = account.initial_capital + np.cumsum(bar_pnl)
    hit = np.flatnonzero(equity <= account.stop_out_equity)
    return int(hit[0]) if hit.size else None
