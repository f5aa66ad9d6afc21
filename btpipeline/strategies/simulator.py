"""Turns target positions into fills and P&L, bar by bar but without a loop over bars.

Rules (each pinned by a test):

* The simulation starts flat at the candles' first bar.
* ``targets[t]`` (decided at bar ``t``'s close) is filled at bar ``t+1``'s OPEN, so the
  position held during bar ``t`` is ``targets[t-1]``; the last bar's target is never filled.
* Prices are mid. A BUY fills at ``open + spread/2 + slippage``, a SELL at
  ``open - spread/2 - slippage``; each fill pays ``commission_per_lot * size / 100,000``.
* A change of position is one CLOSE fill of the old position (if any) then one OPEN fill of
  the new one (if any), both at the same open: a reversal is two fills. Size is fixed.
* Bars before ``start_ns`` (and the fills and positions there) are warm-up: their state
  carries into the range, but only fills and P&L of bars in ``[start_ns, end_ns)`` are
  reported. Bars at or after ``end_ns`` are ignored.
* A CLOSE fill reports the trade's realized net P&L: ``direction * size * (exit price -
  entry price)`` minus both fills' commissions, with the entry taken from its OPEN fill even
  when that happened in the warm-up. OPEN fills report 0.
* Mark-to-market P&L of bar ``t``: ``prev_pos*size*(open_t - close_{t-1}) +
  pos_t*size*(close_t - open_t)`` minus the costs of fills at ``t`` (``size`` times the
  spread/slippage offset, plus commission). Over a round trip it sums to the trade's P&L.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd

from btpipeline.data.candles import Candles
from btpipeline.errors import InvalidParameterError
from btpipeline.strategies.costs import CostModel
from btpipeline.strategies.daily import daily_table

FILL_COLUMNS = ["timestamp", "side", "action", "price", "size", "pnl"]


@dataclass(frozen=True)
class SimulationResult:
    """Everything about bars in ``[start_ns, end_ns)``. ``positions[i]`` is the position held
    during in-range bar ``i`` (after its open fill); ``end_position`` the one held during the
    last bar before ``end_ns`` (its own target, decided at its close, is not filled)."""

    fills: pd.DataFrame
    bar_pnl: np.ndarray
    timestamps: np.ndarray
    positions: np.ndarray
    end_position: int
    daily: pd.DataFrame

    @property
    def total_pnl(self) -> float:
        return float(self.bar_pnl.sum())


@dataclass(frozen=True)
class FillArrays:
    """Every fill of the whole simulation, in time order (CLOSE before OPEN at one bar)."""

    bar: np.ndarray
    direction: np.ndarray  # +1 BUY, -1 SELL
    is_close: np.ndarray
    price: np.ndarray
    pnl: np.ndarray
    size: np.ndarray


def _check_inputs(candles: Candles, targets: np.ndarray,
                  size_units: float | np.ndarray) -> np.ndarray:
    targets = np.asarray(targets)
    if targets.shape != (len(candles),):
        raise InvalidParameterError(
            f"Invalid targets: expected one per candle ({len(candles)}), got shape "
            f"{targets.shape}. Fix: pass the strategy's target_positions(candles, params).")
    as_int8 = targets if targets.dtype == np.int8 else targets.astype(np.int8)
    if targets.size and not ((as_int8 is targets or (as_int8 == targets).all())
                             and -1 <= as_int8.min() and as_int8.max() <= 1):
        raise InvalidParameterError(
            "Invalid targets: expected values in {-1, 0, +1}, got values from "
            f"{targets.min()!r} to {targets.max()!r}. Fix: clip the strategy's output to -1..+1.")
    if isinstance(size_units, np.ndarray):
        if size_units.shape != (len(candles),) or not (np.isfinite(size_units).all()
                                                     and (size_units >= 0).all()):
            raise InvalidParameterError(
                f"Invalid parameter 'size_units': expected one finite size >= 0 per candle "
                f"({len(candles)}), got shape {size_units.shape}. Fix: build it with "
                "sizing.equity_fraction_sizes.")
    elif not (isinstance(size_units, numbers.Real) and math.isfinite(size_units)
              and size_units > 0):
        raise InvalidParameterError(
            f"Invalid parameter 'size_units': expected a finite number > 0, got {size_units!r}. "
            "Fix: pass a positive position size in base units, e.g. 100000.")
    return as_int8


def held_positions(targets: np.ndarray) -> np.ndarray:
    """Position held during each bar: flat at bar 0, then the previous bar's target."""
    pos = np.zeros(targets.shape[0], dtype=np.int8)
    pos[1:] = targets[:-1]
    return pos


@dataclass(frozen=True)
class PositionChanges:
    """The bars at which the held position changes (from ``old`` to ``new``), in time order:
    positions are constant between them, so a simulation needs only these, not one value
    per bar. Bar 0 starts flat and is never a change."""

    bar: np.ndarray  # int64
    old: np.ndarray  # int8
    new: np.ndarray  # int8


def position_changes(targets: np.ndarray) -> PositionChanges:
    """Where ``held_positions(targets)`` changes: bar ``k`` holds ``targets[k-1]``, so it
    changes at ``k >= 2`` where ``targets[k-1] != targets[k-2]``, and at 1 if ``targets[0]``
    is not flat. One pass over the int8 targets."""
    n = targets.shape[0]
    bar = np.flatnonzero(targets[1:n - 1] != targets[:n - 2])
    bar += 2
    if n >= 2 and targets[0] != 0:
        bar = np.concatenate([np.ones(1, bar.dtype), bar])
    new = targets[bar - 1]
    old = targets[np.maximum(bar - 2, 0)]
    if bar.size and bar[0] == 1:
        old[0] = 0
    return PositionChanges(bar.astype(np.int64, copy=False), old, new)


@dataclass(frozen=True)
class ChangeFills:
    """Per position change: the price of its CLOSE fill (meaningful where ``old != 0``) and of
    its OPEN fill (where ``new != 0``), their sizes, and the P&L of the trade its CLOSE ends
    (0 where there is none). The trade closed at change ``k`` was opened at change ``k-1``:
    the position is constant in between."""

    close_price: np.ndarray
    open_price: np.ndarray
    close_size: float | np.ndarray
    open_size: float | np.ndarray
    trade_pnl: np.ndarray


def change_fills(open_: np.ndarray, changes: PositionChanges, costs: CostModel,
                 size: float | np.ndarray) -> ChangeFills:
    """The fills of ``changes`` at their bars' opens (rules in the module docstring)."""
    at_open = open_[changes.bar]
    close_price = at_open + (-changes.old) * costs.price_offset
    open_price = at_open + changes.new * costs.price_offset
    close_size: float | np.ndarray = size
    open_size: float | np.ndarray = size
    if isinstance(size, np.ndarray):  # a CLOSE ends the position held during the bar before
        close_size, open_size = size[np.maximum(changes.bar - 1, 0)], size[changes.bar]
    trade_pnl = np.zeros(changes.bar.shape[0])
    if trade_pnl.shape[0] > 1:
        entry_size = open_size[:-1] if isinstance(open_size, np.ndarray) else open_size
        closed = trade_pnl[1:]
        np.multiply(changes.old[1:] * entry_size, close_price[1:] - open_price[:-1], out=closed)
        closed -= 2.0 * costs.commission(entry_size)
        closed[changes.old[1:] == 0] = 0.0
    return ChangeFills(close_price, open_price, close_size, open_size, trade_pnl)


def _fill_events(changes: PositionChanges, fills: ChangeFills) -> FillArrays:
    """One CLOSE fill per change from a position, then one OPEN fill per change to one."""
    has_close, has_open = changes.old != 0, changes.new != 0
    count = has_close.view(np.int8) + has_open.view(np.int8)
    first = np.cumsum(count, dtype=np.int64)
    total = int(first[-1]) if first.size else 0
    first -= count
    bar = np.empty(total, np.int64)
    is_close = np.zeros(total, bool)
    direction = np.empty(total, np.int8)
    price = np.empty(total)
    size = np.empty(total)
    pnl = np.zeros(total)
    for at, chosen, side, price_of, size_of, closing in (
            (first[has_close], has_close, -changes.old, fills.close_price, fills.close_size,
             True),
            ((first + has_close)[has_open], has_open, changes.new, fills.open_price,
             fills.open_size, False)):
        bar[at] = changes.bar[chosen]
        is_close[at] = closing
        direction[at] = side[chosen]
        price[at] = price_of[chosen]
        size[at] = size_of[chosen] if isinstance(size_of, np.ndarray) else size_of
        if closing:
            pnl[at] = fills.trade_pnl[chosen]
    return FillArrays(bar, direction, is_close, price, pnl, size)


def _bar_pnl(candles: Candles, pos: np.ndarray, prev: np.ndarray, fills: FillArrays,
             costs: CostModel, size: float | np.ndarray) -> np.ndarray:
    open_ = np.asarray(candles.open, dtype=np.float64)
    close = np.asarray(candles.close, dtype=np.float64)
    prev_close = np.concatenate([open_[:1], close[:-1]])
    if isinstance(size, np.ndarray):
        return _sized_bar_pnl(open_, close, prev_close, pos, prev, fills, costs, size)
    fills_per_bar = np.bincount(fills.bar, minlength=open_.shape[0])
    cost_per_fill = size * costs.price_offset + costs.commission(size)
    pnl = prev.astype(np.float64) * (open_ - prev_close)
    pnl += pos.astype(np.float64) * (close - open_)
    pnl *= size
    pnl -= fills_per_bar * cost_per_fill
    return pnl


def _sized_bar_pnl(open_: np.ndarray, close: np.ndarray, prev_close: np.ndarray,
                   pos: np.ndarray, prev: np.ndarray, fills: FillArrays, costs: CostModel,
                   size: np.ndarray) -> np.ndarray:
    """``_bar_pnl`` with a size per bar (``size[t]`` held during bar t)."""
    prev_size = np.concatenate([np.zeros(1), size[:-1]])
    pnl = prev.astype(np.float64) * prev_size * (open_ - prev_close)
    pnl += pos.astype(np.float64) * size * (close - open_)
    cost = fills.size * costs.price_offset + costs.commission(fills.size)
    pnl -= np.bincount(fills.bar, weights=cost, minlength=open_.shape[0])
    return pnl


@dataclass(frozen=True)
class SimulationArrays:
    """``simulate`` before any DataFrame is built: the in-range fills as arrays, the bar P&L,
    timestamps and positions of bars in ``[start_ns, end_ns)``. A sweep's metrics need only
    these (building the fills and daily frames costs more than the simulation itself)."""

    fills: FillArrays
    fill_timestamps: np.ndarray
    bar_pnl: np.ndarray
    timestamps: np.ndarray
    positions: np.ndarray
    end_position: int


def _fills_frame(arrays: SimulationArrays) -> pd.DataFrame:
    fills = arrays.fills
    return pd.DataFrame({
        "timestamp": pd.DatetimeIndex(arrays.fill_timestamps.view("datetime64[ns]"), tz="UTC"),
        "side": np.where(fills.direction > 0, "BUY", "SELL").astype(object),
        "action": np.where(fills.is_close, "CLOSE", "OPEN").astype(object),
        "price": fills.price,
        "size": fills.size.astype(np.float64),
        "pnl": fills.pnl,
    }, columns=FILL_COLUMNS)


def _from_bar(fills: FillArrays, lo: int) -> FillArrays:
    """The fills at bars ``>= lo`` (fills are in bar order)."""
    keep = slice(int(np.searchsorted(fills.bar, lo, side="left")), None)
    return FillArrays(fills.bar[keep], fills.direction[keep], fills.is_close[keep],
                      fills.price[keep], fills.pnl[keep], fills.size[keep])


@dataclass(frozen=True)
class ChangeRun:
    """A simulation reduced to what changes: the candles up to ``end_ns`` (``lo`` is the
    first in-range bar), the checked targets, the position changes and their fills (warm-up
    included), and the size (a number, or one per bar). Its P&L is found per stretch of
    constant position (segments.py), or per bar by ``bar_arrays``."""

    candles: Candles
    targets: np.ndarray
    lo: int
    changes: PositionChanges
    change_fills: ChangeFills
    size: float | np.ndarray

    @property
    def hi(self) -> int:
        return self.targets.shape[0]

    @property
    def first_change(self) -> int:
        """Index of the first change at or after ``lo``."""
        return int(np.searchsorted(self.changes.bar, self.lo, side="left"))

    def in_range_fills(self) -> FillArrays:
        """Every fill at bars ``>= lo``, in time order (CLOSE before OPEN at one bar)."""
        return _from_bar(_fill_events(self.changes, self.change_fills), self.lo)

    def fill_count(self) -> int:
        """``in_range_fills()``'s length."""
        k = self.first_change
        return (int(np.count_nonzero(self.changes.old[k:]))
                + int(np.count_nonzero(self.changes.new[k:])))

    def closed_trades(self) -> tuple[np.ndarray, np.ndarray]:
        """The P&L (quote currency) and price of each in-range CLOSE fill, in time order."""
        k = self.first_change
        closing = self.changes.old[k:] != 0
        return (self.change_fills.trade_pnl[k:][closing],
                self.change_fills.close_price[k:][closing])


def simulate_changes(candles: Candles, targets: np.ndarray, *, costs: CostModel,
                     size_units: float | np.ndarray, start_ns: int, end_ns: int) -> ChangeRun:
    """The fills of ``simulate`` (rules in the module docstring), without any per-bar array."""
    targets = _check_inputs(candles, targets, size_units)
    size: float | np.ndarray = (np.asarray(size_units, dtype=np.float64)
                                if isinstance(size_units, np.ndarray) else float(size_units))
    lo = int(np.searchsorted(candles.timestamp, start_ns, side="left"))
    hi = max(lo, int(np.searchsorted(candles.timestamp, end_ns, side="left")))
    candles, targets = candles.take(slice(0, hi)), targets[:hi]
    if isinstance(size, np.ndarray):
        size = size[:hi]
    changes = position_changes(targets)
    fills = change_fills(np.asarray(candles.open, dtype=np.float64), changes, costs, size)
    return ChangeRun(candles=candles, targets=targets, lo=lo, changes=changes,
                     change_fills=fills, size=size)


def bar_arrays(run: ChangeRun, costs: CostModel) -> SimulationArrays:
    """``run``'s in-range fills with the P&L, timestamps and positions of every in-range bar."""
    lo, hi = run.lo, run.hi
    pos = held_positions(run.targets)
    prev = np.concatenate([np.zeros(1, np.int8), pos[:-1]]) if hi else pos
    fills = _fill_events(run.changes, run.change_fills)
    bar_pnl = _bar_pnl(run.candles, pos, prev, fills, costs, run.size)[lo:]
    stamps = np.asarray(run.candles.timestamp, dtype=np.int64)
    kept = _from_bar(fills, lo)
    return SimulationArrays(fills=kept, fill_timestamps=stamps[kept.bar], bar_pnl=bar_pnl,
                            timestamps=stamps[lo:], positions=pos[lo:],
                            end_position=int(pos[-1]) if hi else 0)


def simulate_arrays(candles: Candles, targets: np.ndarray, *, costs: CostModel,
                    size_units: float | np.ndarray, start_ns: int,
                    end_ns: int) -> SimulationArrays:
    """``simulate`` without its DataFrames (rules in the module docstring)."""
    return bar_arrays(simulate_changes(candles, targets, costs=costs, size_units=size_units,
                                       start_ns=start_ns, end_ns=end_ns), costs)


def simulation_result(arrays: SimulationArrays) -> SimulationResult:
    """The fills and daily frames of ``arrays``."""
    return SimulationResult(
        fills=_fills_frame(arrays), bar_pnl=arrays.bar_pnl, timestamps=arrays.timestamps,
        positions=arrays.positions, end_position=arrays.end_position,
        daily=daily_table(arrays.timestamps, arrays.bar_pnl, arrays.positions))


def simulate(candles: Candles, targets: np.ndarray, *, costs: CostModel,
             size_units: float | np.ndarray, start_ns: int, end_ns: int) -> SimulationResult:
    """Simulate ``targets`` over ``candles`` (rules in the module docstring)."""
    return simulation_result(simulate_arrays(candles, targets, costs=costs,
                                             size_units=size_units, start_ns=start_ns,
                                             end_ns=end_ns))
