"""The one entry point the backtest assets call: candles in, fills/daily/metrics out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from btpipeline.data.candles import Candles
from btpipeline.epics import Epic
from btpipeline.errors import InvalidDateRangeError
from btpipeline.strategies.account import Account, stop_out_bar
from btpipeline.strategies.base import Strategy, params_dict
from btpipeline.strategies.costs import CostModel
from btpipeline.strategies.daily import daily_table
from btpipeline.strategies.gaps import (
    DEFAULT_MAX_GAP_HOURS,
    Gap,
    gaps_at,
    max_gap_ns,
    restarting_targets,
    segment_starts,
)
from btpipeline.strategies.metrics import compute_metrics
from btpipeline.strategies.registry import get_strategy
from btpipeline.strategies.simulator import SimulationResult, simulate
from btpipeline.strategies.sizing import check_fraction, equity_fraction_sizes


@dataclass(frozen=True)
class BacktestResult:
    """One strategy on one epic over ``[start_ns, end_ns)``. ``params`` is the JSON-able dict
    of the parameters used (defaults filled in). ``fills`` and ``daily`` P&L and ``metrics``
    are in the account's currency and relative to its equity (see account.py and metrics.py);
    ``simulation`` keeps the quote-currency figures. ``stopped_out_at`` is the close of the bar
    at which equity reached the stop-out level (trading stopped there), else None. ``gaps``
    are the holes in the candles (warm-up included) after which the state restarted."""

    strategy: str
    epic: str
    params: dict[str, Any]
    fills: pd.DataFrame
    daily: pd.DataFrame
    metrics: dict[str, float]
    end_position: int
    simulation: SimulationResult
    account: Account
    stopped_out_at: pd.Timestamp | None = None
    gaps: tuple[Gap, ...] = ()
    sizing: str = "units"

    @property
    def trades(self) -> pd.DataFrame:
        """Closed trades: the CLOSE fills (timestamp, side, price, size, pnl)."""
        closes = self.fills[self.fills["action"] == "CLOSE"]
        return closes.drop(columns="action").reset_index(drop=True)

    @property
    def trade_pnls(self) -> np.ndarray:
        return self.trades["pnl"].to_numpy(dtype=np.float64)


def _check_range(start_ns: int, end_ns: int) -> None:
    if not int(start_ns) < int(end_ns):
        raise InvalidDateRangeError(
            f"Invalid backtest range: expected start_ns < end_ns, got start_ns={start_ns}, "
            f"end_ns={end_ns}. Fix: pass a start before the (exclusive) end.")


def run_backtest(candles: Candles, *, strategy: str | Strategy,
                 params: Mapping[str, object] | object | None,
                 epic: Epic, start_ns: int, end_ns: int, costs: CostModel | None = None,
                 size_units: float = 100_000, account: Account | None = None,
                 max_gap_hours: float = DEFAULT_MAX_GAP_HOURS,
                 equity_fraction: float | None = None) -> BacktestResult:
    """Run ``strategy`` (a registered name, or a ``Strategy`` object such as a universe
    variant's ``strategy_object``) over ``candles`` and report ``[start_ns, end_ns)``.

    ``candles`` should start ``warmup_bars(params)`` bars before ``start_ns`` so that
    indicators and any open position carry into the range (see simulator.py). ``params`` is a
    mapping of overrides, ``None`` for the defaults, or the strategy's params object.
    ``costs`` defaults to the epic's catalogue spread with no commission or slippage;
    ``account`` to 100,000 USD that stops out when empty. Across a hole in the candles
    longer than ``max_gap_hours`` nothing carries: indicators and position restart (gaps.py).
    With ``equity_fraction`` each position's notional is that fraction of equity at its entry
    (sizing.py) and ``size_units`` is not used; otherwise every position is ``size_units``.
    """
    chosen = strategy if isinstance(strategy, Strategy) else get_strategy(strategy)
    used = chosen.coerce_params(params)
    _check_range(start_ns, end_ns)
    costs = costs if costs is not None else CostModel.for_epic(epic)
    account = account if account is not None else Account()
    account.check_pair(epic)
    candles = candles.take(slice(0, int(np.searchsorted(candles.timestamp, end_ns, side="left"))))
    starts = segment_starts(candles.timestamp, max_gap_ns(max_gap_hours))
    targets = restarting_targets(candles, starts, lambda part: chosen.target_positions(part, used))
    fraction = None if equity_fraction is None else check_fraction(equity_fraction)
    run = _AccountRun(candles, costs, float(size_units), start_ns, end_ns, epic, account,
                      fraction)
    sim, bar_pnl, stop = run.simulate(targets)
    if stop is not None:  # stop trading: flat from the next bar's open on
        stopped = np.array(targets, dtype=np.int8)
        stopped[run.first_bar + stop:] = 0
        sim, bar_pnl, _ = run.simulate(stopped)
    fills = sim.fills.assign(pnl=account.to_account(epic, sim.fills["pnl"], sim.fills["price"]))
    daily = daily_table(sim.timestamps, bar_pnl, sim.positions)
    closes = fills["pnl"].to_numpy()[fills["action"].to_numpy() == "CLOSE"]
    metrics = compute_metrics(daily["pnl"].to_numpy(), closes, capital=account.initial_capital,
                              bars=int(sim.timestamps.shape[0]),
                              bars_in_market=int(np.count_nonzero(sim.positions)),
                              days=daily["day"].to_numpy())
    return BacktestResult(strategy=chosen.name, epic=epic.name, params=params_dict(used),
                          fills=fills, daily=daily, metrics=metrics,
                          end_position=sim.end_position, simulation=sim, account=account,
                          stopped_out_at=None if stop is None else pd.Timestamp(
                              int(sim.timestamps[stop]), tz="UTC"),
                          gaps=tuple(gaps_at(candles.timestamp, starts)),
                          sizing=(f"units {float(size_units):g}" if fraction is None
                                  else f"equity_fraction {fraction:g}"))


@dataclass(frozen=True)
class _AccountRun:
    """One simulation setting; ``simulate`` also returns the in-range bar P&L in the account
    currency and the first bar (in-range index) at or below the stop-out level."""

    candles: Candles
    costs: CostModel
    size: float
    start_ns: int
    end_ns: int
    epic: Epic
    account: Account
    fraction: float | None

    @property
    def first_bar(self) -> int:
        return int(np.searchsorted(self.candles.timestamp, self.start_ns, side="left"))

    def simulate(self, targets: np.ndarray) -> tuple[SimulationResult, np.ndarray, int | None]:
        lo = self.first_bar
        size: float | np.ndarray = self.size
        if self.fraction is not None:
            size = equity_fraction_sizes(self.candles, targets, first_bar=lo,
                                         fraction=self.fraction, costs=self.costs,
                                         epic=self.epic, account=self.account)
        sim = simulate(self.candles, targets, costs=self.costs, size_units=size,
                       start_ns=self.start_ns, end_ns=self.end_ns)
        close = np.asarray(self.candles.close, dtype=np.float64)[lo:lo + sim.bar_pnl.shape[0]]
        bar_pnl = self.account.to_account(self.epic, sim.bar_pnl, close)
        return sim, bar_pnl, stop_out_bar(bar_pnl, self.account)
