"""A run's daily P&L, exposure and stop-out check from its stretches of constant position.

A position changes tens of thousands of times in a year of 1-minute bars, not 374,520
times. Between two changes (and within one UTC day) every bar has the same position ``p``
and size ``s`` and no fill, so the bar P&L of simulator.py, ``s * p * (close_t -
close_{t-1})``, sums over the stretch to ``s * p * (close_{b-1} - close_a)`` (in the quote
currency; in a base-currency account each bar is divided by its close, and the sum is a
difference of the prefix sums of ``(close_t - close_{t-1}) / close_t``). Only the stretch's
first bar ``a`` has its own formula: the gap from the previous close at the previous
position and size, the body at the new ones, and the costs of the fills there (exactly the
per-bar formula at that bar). So a run's daily P&L, bars in the market and the equity at
every bar's close are found with work proportional to the changes plus the days, not the
bars: the sweep kernel's inner loop.

Stop-out (account.py) is decided at the first bar whose closing equity is at or below the
level. Inside a stretch the equity moves with the close (or the prefix sum), so it never
goes below the stretch's starting equity minus ``|s * p|`` times that day's price range. When
that lower bound stays clear of the level by a margin far above any rounding, no bar can
stop the run; otherwise the caller checks bar by bar (``account.stop_out_bar``), so the
decision is always the per-bar one.

What a run needs of the candles (day starts, each day's price range, the prefix sums) is the
same for every combination of a sweep chunk, so it goes through the indicator cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from btpipeline.data.candles import Candles
from btpipeline.strategies.costs import CostModel
from btpipeline.strategies.daily import day_starts
from btpipeline.strategies.indicator_cache import memoised
from btpipeline.strategies.simulator import ChangeRun

STOP_MARGIN = 1e-6
"""Relative margin of the stop-out shortcut: far above the rounding of any per-bar sum."""


@dataclass(frozen=True)
class DailyFigures:
    """``days`` (``datetime64[D]``) with bars in the range, their P&L in the account currency,
    the range's bars and bars held with a position; ``clear_of_stop`` is True when no bar's
    closing equity can be at or below the stop-out level (False: check bar by bar)."""

    days: np.ndarray
    pnl: np.ndarray
    bars: int
    bars_in_market: int
    clear_of_stop: bool


def _address(array: np.ndarray) -> int:
    return int(array.__array_interface__["data"][0])


def _running_returns(close: np.ndarray) -> np.ndarray:
    """``X[t] = sum_{1 <= u <= t} (close_u - close_{u-1}) / close_u`` (``X[0] = 0``): the
    running price a base-currency account's P&L follows."""
    running = np.zeros(close.shape[0])
    if close.shape[0] > 1:
        np.cumsum(np.diff(close) / close[1:], out=running[1:])
    return running


OPEN, CLOSE, PREV_CLOSE, RUNNING, PREV_RUNNING = range(5)
"""Columns of the bar table: a bar's open, close, the previous close (its own open at bar
0), and (base-currency accounts) X at the bar and at the bar before."""


def _bar_table(candles: Candles, by_rate: bool) -> np.ndarray:
    """One row per bar holding everything a stretch's first bar needs: a stretch costs one
    row lookup, not one lookup per array (each of which touches a cache line per stretch)."""
    open_ = np.asarray(candles.open, dtype=np.float64)
    close = np.asarray(candles.close, dtype=np.float64)
    table = np.empty((close.shape[0], 5 if by_rate else 3))
    table[:, OPEN], table[:, CLOSE] = open_, close
    table[1:, PREV_CLOSE], table[:1, PREV_CLOSE] = close[:-1], open_[:1]
    if by_rate:
        running = _running_returns(close)
        table[:, RUNNING] = running
        table[1:, PREV_RUNNING], table[:1, PREV_RUNNING] = running[:-1], 0.0
    return table


@dataclass(frozen=True)
class _Grid:
    """What every run over the same candles and range shares."""

    starts: np.ndarray  # absolute index of each in-range day's first bar, then ``hi``
    labels: np.ndarray  # datetime64[D] of each day
    table: np.ndarray  # _bar_table
    reach: float  # max - min over the range of X: the close, or _running_returns


def _grid(candles: Candles, lo: int, by_rate: bool) -> _Grid:
    """The run's day grid and bar table, memoised per candles and range in a chunk."""
    stamps = np.asarray(candles.timestamp, dtype=np.int64)
    close = np.asarray(candles.close, dtype=np.float64)
    key = (lo, _address(stamps), _address(np.asarray(candles.open)), by_rate)
    starts = memoised("segment_day_starts", close, key,
                      lambda: np.append(day_starts(stamps[lo:])[1] + lo, close.shape[0]),
                      counted=False)
    labels = memoised("segment_day_labels", close, key,
                      lambda: day_starts(stamps[lo:])[0].astype(np.int64), counted=False)
    table = memoised("segment_bar_table", close, key, lambda: _bar_table(candles, by_rate),
                     counted=False)
    x = table[:, RUNNING if by_rate else CLOSE]
    reach = memoised("segment_reach", close, key, lambda: np.array([np.ptp(x[lo:])]),
                     counted=False)
    return _Grid(starts, labels.astype("datetime64[D]"), table, float(reach[0]))


def daily_figures(run: ChangeRun, costs: CostModel, *, by_rate: bool, capital: float,
                  stop_equity: float, check_stop: bool = True) -> DailyFigures:
    """``run``'s in-range daily P&L in the account currency (``by_rate``: each bar's P&L is
    divided by its close, a base-currency account), exposure and, with ``check_stop``, the
    stop-out shortcut (else ``clear_of_stop`` is True)."""
    lo, hi = run.lo, run.hi
    if hi <= lo:
        return DailyFigures(np.array([], dtype="datetime64[D]"), np.array([], np.float64),
                            0, 0, True)
    grid = _grid(run.candles, lo, by_rate)
    x_col, x_before_col = (RUNNING, PREV_RUNNING) if by_rate else (CLOSE, PREV_CLOSE)
    x = grid.table[:, x_col]

    # Stretches of constant position: from lo, and from each later change, to the next.
    change, old, new = run.changes.bar, run.changes.old, run.changes.new
    first = int(np.searchsorted(change, lo, side="left"))  # changes at or after lo
    if first < change.shape[0] and change[first] == lo:
        a = change[first:]
        prev, pos = old[first:].astype(np.float64), new[first:].astype(np.float64)
        at_change = slice(None)
    else:  # lo carries the position of the last change before it
        held = float(new[first - 1]) if first > 0 else 0.0
        a = np.concatenate([[lo], change[first:]])
        prev = np.concatenate([[held], old[first:]]).astype(np.float64)
        pos = np.concatenate([[held], new[first:]]).astype(np.float64)
        at_change = slice(1, None)
    b = np.empty_like(a)
    b[:-1], b[-1] = a[1:], hi
    closes_at = np.zeros(a.shape[0], bool)
    opens_at = np.zeros(a.shape[0], bool)
    closes_at[at_change], opens_at[at_change] = prev[at_change] != 0, pos[at_change] != 0

    # The first bar of each stretch: exactly the per-bar formula of simulator.py.
    rows = np.take(grid.table, a, axis=0)
    close_a = rows[:, CLOSE]
    gap = rows[:, OPEN] - rows[:, PREV_CLOSE]
    body = close_a - rows[:, OPEN]
    if isinstance(run.size, np.ndarray):
        size = run.size[a]
        size_before = run.size[a - 1] if a[0] > 0 else np.concatenate(
            [[0.0], run.size[a[1:] - 1]])
        head = prev * size_before * gap
        head += pos * size * body
        head -= (closes_at * (size_before * costs.price_offset + costs.commission(size_before))
                 + opens_at * (size * costs.price_offset + costs.commission(size)))
        exposure = size * pos
    else:
        head = prev * gap
        head += pos * body
        head *= run.size
        head -= ((closes_at.view(np.int8) + opens_at.view(np.int8))
                 * (run.size * costs.price_offset + costs.commission(run.size)))
        exposure = run.size * pos
    if by_rate:
        head /= close_a

    # A stretch's P&L: X from its first bar to its last (the next stretch's "X before").
    x_a = rows[:, x_col]
    x_end = np.empty(a.shape[0])
    x_end[:-1], x_end[-1] = rows[1:, x_before_col], x[hi - 1]
    whole = x_end - x_a
    whole *= exposure
    whole += head

    # Its first day gets it up to that day's last bar; each later day it runs into (a day
    # whose first bar is not a change) gets it from the day's first bar to the stretch's
    # end or the day's, whichever comes first.
    starts = grid.starts
    day_first = np.searchsorted(a, starts[:-1], side="left")  # first stretch from each day
    into = np.flatnonzero(a[np.minimum(day_first, a.shape[0] - 1)] != starts[:-1])
    k = day_first[into] - 1  # the stretch that runs into day ``into``
    part = whole
    if into.size:
        part = whole.copy()
        crossing, first_into = np.unique(k, return_index=True)
        day_end = starts[into[first_into]]
        part[crossing] = exposure[crossing] * (x[day_end - 1] - x_a[crossing]) + head[crossing]
    days = starts.shape[0] - 1
    has = np.diff(np.append(day_first, a.shape[0])) > 0
    pnl = np.zeros(days)
    pnl[has] = np.add.reduceat(part, day_first[has])
    if into.size:
        pnl[into] += exposure[k] * (x[np.minimum(b[k], starts[into + 1]) - 1]
                                    - x[starts[into] - 1])

    in_market = int((b - a)[pos != 0].sum())
    clear = True
    if check_stop:
        before = np.cumsum(whole)
        before -= whole
        before += capital
        swing = np.abs(exposure) * grid.reach  # the most X moves inside any stretch
        low = float(np.min(before + head - swing))
        scale = capital + float(np.abs(head).sum() + swing.sum() + np.abs(whole).sum())
        clear = low > stop_equity + STOP_MARGIN * scale
    return DailyFigures(grid.labels, pnl, hi - lo, in_market, clear)
