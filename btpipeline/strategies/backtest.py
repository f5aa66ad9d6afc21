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
from btpipeline.strategies.segments import DailyFigures, daily_figures
from btpipeline.strategies.simulator import (
    ChangeRun,
    SimulationArrays,
    SimulationResult,
    bar_arrays,
    simulate_changes,
    simulation_result,
)
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


@dataclass(frozen=True)
class SweepMetrics:
    """What a sweep keeps of one backtest: ``run_backtest(...).metrics`` and
    ``len(run_backtest(...).fills)``, computed without building those frames."""

    metrics: dict[str, float]
    fills: int


@dataclass(frozen=True)
class _Run:
    """One simulation of ``_AccountRun``: its fills, its daily figures in the account
    currency, and the in-range bar at which equity first reached the stop-out level."""

    changes: ChangeRun
    daily: DailyFigures
    stop: int | None


@dataclass(frozen=True)
class _Simulated:
    """A backtest's simulation before any frame or per-bar array is built (shared by
    ``run_backtest`` and ``backtest_metrics`` so both report exactly the same metrics)."""

    strategy: str
    params: dict[str, Any]
    candles: Candles
    starts: np.ndarray
    run: _Run
    stop: int | None
    sizing: str
    costs: CostModel


def run_backtest(candles: Candles, *, strategy: str | Strategy,
                 params: Mapping[str, object] | object | None,
                 epic: Epic, start_ns: int, end_ns: int, costs: CostModel | None = None,
                 size_units: float = 100_000, account: Account | None = None,
                 max_gap_hours: float = DEFAULT_MAX_GAP_HOURS,
                 equity_fraction: float | None = None) -> BacktestResult:
    """Run ``strategy`` (a built-in's name, or a ``Strategy`` object such as a user's) over
    ``candles`` and report ``[start_ns, end_ns)``.

    ``candles`` should start ``warmup_bars(params)`` bars before ``start_ns`` so that
    indicators and any open position carry into the range (see simulator.py). ``params`` is a
    mapping of overrides, ``None`` for the defaults, or the strategy's params object.
    ``costs`` defaults to the epic's catalogue spread with no commission or slippage;
    ``account`` to 100,000 USD that stops out when empty. Across a hole in the candles
    longer than ``max_gap_hours`` nothing carries: indicators and position restart (gaps.py).
    With ``equity_fraction`` each position's notional is that fraction of equity at its entry
    (sizing.py) and ``size_units`` is not used; otherwise every position is ``size_units``.
    """
    account = account if account is not None else Account()
    done = _simulate_backtest(candles, strategy=strategy, params=params, epic=epic,
                              start_ns=start_ns, end_ns=end_ns, costs=costs,
                              size_units=size_units, account=account,
                              max_gap_hours=max_gap_hours, equity_fraction=equity_fraction)
    arrays = bar_arrays(done.run.changes, done.costs)
    sim = simulation_result(arrays)
    bar_pnl = _account_bar_pnl(done.run.changes, arrays, account, epic)
    fills = sim.fills.assign(pnl=account.to_account(epic, sim.fills["pnl"], sim.fills["price"]))
    return BacktestResult(strategy=done.strategy, epic=epic.name, params=done.params,
                          fills=fills, daily=daily_table(sim.timestamps, bar_pnl,
                                                         sim.positions),
                          metrics=_metrics(done, account, epic),
                          end_position=sim.end_position, simulation=sim, account=account,
                          stopped_out_at=None if done.stop is None else pd.Timestamp(
                              int(sim.timestamps[done.stop]), tz="UTC"),
                          gaps=tuple(gaps_at(done.candles.timestamp, done.starts)),
                          sizing=done.sizing)


def backtest_metrics(candles: Candles, *, strategy: str | Strategy,
                     params: Mapping[str, object] | object | None, epic: Epic, start_ns: int,
                     end_ns: int, costs: CostModel | None = None, size_units: float = 100_000,
                     account: Account | None = None,
                     max_gap_hours: float = DEFAULT_MAX_GAP_HOURS,
                     equity_fraction: float | None = None) -> SweepMetrics:
    """``run_backtest``'s metrics and fill count (same arguments, same numbers) without its
    fills and daily frames: the sweep kernel, several times faster per combination."""
    account = account if account is not None else Account()
    done = _simulate_backtest(candles, strategy=strategy, params=params, epic=epic,
                              start_ns=start_ns, end_ns=end_ns, costs=costs,
                              size_units=size_units, account=account,
                              max_gap_hours=max_gap_hours, equity_fraction=equity_fraction)
    return SweepMetrics(metrics=_metrics(done, account, epic),
                        fills=done.run.changes.fill_count())


def _simulate_backtest(candles: Candles, *, strategy: str | Strategy,
                       params: Mapping[str, object] | object | None, epic: Epic, start_ns: int,
                       end_ns: int, costs: CostModel | None, size_units: float,
                       account: Account, max_gap_hours: float,
                       equity_fraction: float | None) -> _Simulated:
    chosen = strategy if isinstance(strategy, Strategy) else get_strategy(strategy)
    used = chosen.coerce_params(params)
    _check_range(start_ns, end_ns)
    costs = costs if costs is not None else CostModel.for_epic(epic)
    account.check_pair(epic)
    candles = candles.take(slice(0, int(np.searchsorted(candles.timestamp, end_ns, side="left"))))
    starts = segment_starts(candles.timestamp, max_gap_ns(max_gap_hours))
    targets = restarting_targets(candles, starts, lambda part: chosen.target_positions(part, used))
    fraction = None if equity_fraction is None else check_fraction(equity_fraction)
    run = _AccountRun(candles, costs, float(size_units), start_ns, end_ns, epic, account,
                      fraction)
    first = run.simulate(targets)
    final = first
    if first.stop is not None:  # stop trading: flat from the next bar's open on
        stopped = np.array(targets, dtype=np.int8)
        stopped[run.first_bar + first.stop:] = 0
        final = run.simulate(stopped, check_stop=False)
    return _Simulated(strategy=chosen.name, params=params_dict(used), candles=candles,
                      starts=starts, run=final, stop=first.stop, costs=costs,
                      sizing=(f"units {float(size_units):g}" if fraction is None
                              else f"equity_fraction {fraction:g}"))


def _metrics(done: _Simulated, account: Account, epic: Epic) -> dict[str, float]:
    """Metrics from the daily figures (account currency, summed per stretch of constant
    position: segments.py) and the closed trades' P&L (converted fill by fill, as in the
    fills frame)."""
    pnl, price = done.run.changes.closed_trades()
    closes = account.to_account(epic, pnl, price)
    daily = done.run.daily
    return compute_metrics(daily.pnl, closes, capital=account.initial_capital,
                           bars=daily.bars, bars_in_market=daily.bars_in_market,
                           days=daily.days)


def _account_bar_pnl(run: ChangeRun, arrays: SimulationArrays, account: Account,
                     epic: Epic) -> np.ndarray:
    """The in-range bar P&L of ``arrays`` in the account currency."""
    close = np.asarray(run.candles.close, dtype=np.float64)[run.lo:run.hi]
    return account.to_account(epic, arrays.bar_pnl, close)


@dataclass(frozen=True)
class _AccountRun:
    """One simulation setting; ``simulate`` returns the run's fills, its daily figures in
    the account currency and the first bar (in-range index) at or below the stop-out level
    (None when ``check_stop`` is False)."""

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

    def simulate(self, targets: np.ndarray, check_stop: bool = True) -> _Run:
        size: float | np.ndarray = self.size
        if self.fraction is not None:
            size = equity_fraction_sizes(self.candles, targets, first_bar=self.first_bar,
                                         fraction=self.fraction, costs=self.costs,
                                         epic=self.epic, account=self.account)
        run = simulate_changes(self.candles, targets, costs=self.costs, size_units=size,
                               start_ns=self.start_ns, end_ns=self.end_ns)
        by_rate = self.account.currency != self.epic.quote_currency
        daily = daily_figures(run, self.costs, by_rate=by_rate,
                              capital=self.account.initial_capital,
                              stop_equity=self.account.stop_out_equity, check_stop=check_stop)
        stop = None
        if check_stop and not daily.clear_of_stop:  # near the level: decide bar by bar
            bar_pnl = _account_bar_pnl(run, bar_arrays(run, self.costs), self.account,
                                       self.epic)
            stop = stop_out_bar(bar_pnl, self.account)
        return _Run(changes=run, daily=daily, stop=stop)
