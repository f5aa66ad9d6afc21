"""Where the live scanner gets its candles: the ``CandleFeed`` protocol and ``ReplayFeed``.

A feed has a clock. ``advance()`` is called once at the start of every scanner tick (a broker
feed may refresh its buffers there, or do nothing); ``latest(epic, bars)`` then returns the
last ``bars`` *closed* 1-minute bars of ``epic`` as of that clock, oldest first.

``ReplayFeed`` replays the stored Arrow month files (``CandleStore``) with one of two clocks:

* ``"bar"`` (default, deterministic): every ``advance()`` makes exactly one more bar visible,
  the next bar time found in any of the feed's epics (weekend gaps are skipped, not waited
  out). The same store, epics and start give the same sequence, whatever the wall clock.
* ``"wall"``: replay time = ``start + elapsed wall time x speed``, read at each ``advance()``
  (``speed=60`` replays one stored minute per second).

A bar is visible (closed) once the replay time reaches its open time + 1 minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Literal, Protocol

import numpy as np

from btpipeline.data.candles import Candles
from btpipeline.data.store import CandleStore
from btpipeline.data.timestamps import NS_PER_MINUTE, iso_utc, month_of_ns
from btpipeline.epics import get_epic
from btpipeline.errors import InvalidParameterError, MissingDataError

BAR_NS = NS_PER_MINUTE
ClockMode = Literal["bar", "wall"]
Month = tuple[int, int]


class CandleFeed(Protocol):
    """Latest closed candles per epic; what the scanner needs from a data source."""

    #: The feed's clock (epoch ns): a bar of any timeframe has closed once it passed its end.
    now_ns: int

    def advance(self) -> None:
        """Called once at the start of each scanner tick (refresh, or move a replay clock)."""

    def latest(self, epic: str, bars: int) -> Candles:
        """The last ``bars`` closed bars of ``epic`` (fewer if fewer exist), oldest first."""


class ReplayFeed:
    """A ``CandleFeed`` over stored Arrow candles with a bar-by-bar or wall-time replay clock."""

    def __init__(self, store: CandleStore, epics: Sequence[str], *, start_ns: int | None = None,
                 warmup_bars: int = 0, mode: ClockMode = "bar", speed: float = 1.0,
                 wall_clock_ns: Callable[[], int] = time.time_ns) -> None:
        if mode not in ("bar", "wall"):
            raise InvalidParameterError(
                f"Replay clock mode {mode!r} is not known: expected 'bar' or 'wall'. "
                "Fix: pass mode='bar' (one bar per tick) or mode='wall' (wall time x speed).")
        if not speed > 0:
            raise InvalidParameterError(
                f"Replay speed is {speed!r}; it must be > 0. Fix: pass e.g. speed=1 or 60.")
        self.store = store
        self.epics = tuple(get_epic(e).name for e in epics)
        self.mode: ClockMode = mode
        self.speed = float(speed)
        self._wall_clock_ns = wall_clock_ns
        self._months = {epic: self._stored_months(epic) for epic in self.epics}
        self.start_ns = self._default_start(warmup_bars) if start_ns is None else int(start_ns)
        self.now_ns = self.start_ns
        self.exhausted = False
        self._wall_start_ns: int | None = None

    # -- the clock ----------------------------------------------------------------------------
    def advance(self) -> None:
        """Move the replay clock: one bar (``bar``) or to the current wall-mapped time."""
        if self.mode == "wall":
            wall = self._wall_clock_ns()
            if self._wall_start_ns is None:
                self._wall_start_ns = wall
            self.now_ns = self.start_ns + int((wall - self._wall_start_ns) * self.speed)
            return
        upcoming = [t for t in (self._next_bar(e, self.now_ns - BAR_NS) for e in self.epics)
                    if t is not None]
        if upcoming:
            self.now_ns = min(upcoming) + BAR_NS
        else:
            self.exhausted = True

    def latest(self, epic: str, bars: int) -> Candles:
        """The last ``bars`` bars of ``epic`` closed by the replay clock (views when they lie
        in one month file, else a copy), oldest first; empty before the data starts."""
        cutoff = self.now_ns - BAR_NS  # newest visible open time
        parts: list[Candles] = []
        need = int(bars)
        for month in reversed(self._months_of(epic)):
            if need <= 0:
                break
            if month > month_of_ns(cutoff):
                continue
            candles = self.store.read_month(epic, *month)
            hi = int(np.searchsorted(candles.timestamp, cutoff, side="right"))
            part = candles.take(slice(max(hi - need, 0), hi))
            if len(part):
                parts.insert(0, part)
                need -= len(part)
        return Candles.concat(parts)

    def describe(self) -> str:
        return (f"replay of {self.store.root} from {iso_utc(self.start_ns)} "
                f"({'one bar per tick' if self.mode == 'bar' else f'wall time x {self.speed:g}'})")

    # -- helpers ------------------------------------------------------------------------------
    def _stored_months(self, epic: str) -> list[Month]:
        months = self.store.months(epic)
        if not months:
            raise MissingDataError(
                f"No {epic} candles are stored under {self.store.root}, so the scanner has "
                f"nothing to replay. Fix: `btpipeline generate --epics {epic} --start ... "
                f"--end ...` or `btpipeline import FILE --epic {epic}`, or leave {epic} out "
                "of --epics.")
        return months

    def _months_of(self, epic: str) -> list[Month]:
        try:
            return self._months[epic]
        except KeyError:
            raise MissingDataError(
                f"Epic {epic!r} is not in this feed (epics: {', '.join(self.epics)}). "
                f"Fix: build the ReplayFeed with {epic} in its epics.") from None

    def _next_bar(self, epic: str, after_ns: int) -> int | None:
        """Open time of ``epic``'s first stored bar strictly after ``after_ns``."""
        for month in self._months_of(epic):
            if month < month_of_ns(after_ns):
                continue
            stamps = self.store.read_month(epic, *month).timestamp
            at = int(np.searchsorted(stamps, after_ns, side="right"))
            if at < len(stamps):
                return int(stamps[at])
        return None

    def _default_start(self, warmup_bars: int) -> int:
        """The open time of the first epic's bar number ``warmup_bars`` (its first bar if it
        holds fewer), so the first tick already has a full warm-up."""
        epic, seen = self.epics[0], 0
        for month in self._months_of(epic):
            stamps = self.store.read_month(epic, *month).timestamp
            if seen + len(stamps) > warmup_bars:
                return int(stamps[warmup_bars - seen])
            seen += len(stamps)
        return int(self.store.read_month(epic, *self._months_of(epic)[0]).timestamp[0])
