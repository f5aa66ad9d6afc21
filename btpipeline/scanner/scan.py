"""One scan: the latest target position of every epic x strategy, from the strategy kernels.

Each strategy's ``target_positions`` runs on the last ``warmup_bars`` bars of its timeframe
(indicator convergence plus the state margin: the same history a backtest reads before a
range start), and the scanner keeps the value of the newest bar. A strategy on a longer
timeframe than the feed's 1-minute bars (the universe variant's ``timeframe``: H1, ...) sees
only bars that have closed by the feed's clock (``closed_bars``), and is evaluated only when
a new one closed: between two closes it keeps its last signal, never looking at an unfinished
bar. No strategy logic lives here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from btpipeline.data.candles import Candles
from btpipeline.data.timeframes import bar_labels, closed_bars, source_bars, timeframe_minutes
from btpipeline.epics import get_epic
from btpipeline.scanner.feed import CandleFeed
from btpipeline.strategies import Strategy, get_strategy

SIDES = {1: "BUY", -1: "SELL", 0: "FLAT"}
log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PlannedStrategy:
    """A strategy with its (default) parameters, its timeframe and the bars one evaluation
    reads (``bars`` of ``timeframe``; ``minute_bars`` of the feed's 1-minute bars)."""

    name: str
    strategy: Strategy
    params: Any
    bars: int
    timeframe: str = "M1"

    @property
    def minute_bars(self) -> int:
        """Enough 1-minute bars for ``bars`` closed bars, plus an unfinished bar at the end
        and a cut one at the start."""
        extra = 0 if self.timeframe == "M1" else 2
        return source_bars(self.bars + extra, self.timeframe)


@dataclasses.dataclass(frozen=True)
class ScanPlan:
    """What every tick evaluates: ``epics`` x ``strategies``."""

    epics: tuple[str, ...]
    strategies: tuple[PlannedStrategy, ...]

    @classmethod
    def build(cls, epics: Sequence[str], strategies: Sequence[str],
              timeframes: Mapping[str, str] | None = None) -> ScanPlan:
        """Check the names (unknown ones raise with the known list) and size the warm-ups.
        ``timeframes``: strategy -> timeframe (default: the universe variant of that name's,
        else M1)."""
        chosen = universe_timeframes() if timeframes is None else timeframes
        planned = []
        for name in dict.fromkeys(strategies):
            strategy = get_strategy(name)
            params = strategy.make_params()
            planned.append(PlannedStrategy(name, strategy, params, strategy.warmup_bars(params),
                                           chosen.get(name, "M1")))
        return cls(tuple(get_epic(e).name for e in dict.fromkeys(epics)), tuple(planned))

    @property
    def max_bars(self) -> int:
        """1-minute bars the feed must hold for every strategy's evaluation."""
        return max((s.minute_bars for s in self.strategies), default=1)


def universe_timeframes() -> dict[str, str]:
    """Variant name -> timeframe from the universe file in use; empty (every strategy on M1)
    when it does not load: the scanner must start even with a broken universe file."""
    from btpipeline.universe import default_universe

    try:
        return {name: v.timeframe for name, v in default_universe().variants.items()}
    except Exception as error:  # any failure to load: fall back to M1, and say so
        log.warning("universe file not loaded (%s); every strategy scans M1 bars", error)
        return {}


@dataclasses.dataclass(frozen=True)
class Signal:
    """The position wanted after ``bar_timestamp_ns``'s bar (open time, epoch ns) closed."""

    epic: str
    strategy: str
    bar_timestamp_ns: int
    position: int
    price: float
    latency_us: int


#: The last signal per (epic, strategy): kept between ticks, reused until a new bar closes.
LastSignals = dict[tuple[str, str], Signal]


def newest_closed_bar(candles: Candles, timeframe: str, now_ns: int) -> int | None:
    """Open time of the newest ``timeframe`` bar of ``candles`` closed by ``now_ns`` (cheap:
    two label look-ups, no resampling), or None if none has closed."""
    if len(candles) == 0:
        return None
    length = timeframe_minutes(timeframe) * 60 * 1_000_000_000
    label = int(bar_labels(candles.timestamp[-1:], timeframe)[0])
    if label + length <= now_ns:
        return label
    earlier = int(np.searchsorted(candles.timestamp, label, side="left"))
    if earlier == 0:
        return None
    return int(bar_labels(candles.timestamp[earlier - 1:earlier], timeframe)[0])


def strategy_bars(candles: Candles, planned: PlannedStrategy, now_ns: int) -> Candles:
    """The last ``planned.bars`` closed bars of its timeframe in ``candles`` (closed 1-minute
    bars, oldest first); a bar cut at the start of the window is dropped too."""
    n = len(candles)
    window = candles.take(slice(max(n - planned.minute_bars, 0), n))
    if planned.timeframe == "M1":
        return window
    bars = closed_bars(window, planned.timeframe, now_ns)
    if n > planned.minute_bars and len(bars):
        bars = bars.take(slice(1, len(bars)))
    return bars.take(slice(max(len(bars) - planned.bars, 0), len(bars)))


def scan(feed: CandleFeed, plan: ScanPlan, scheduled_ns: int,
         last: LastSignals | None = None) -> list[Signal]:
    """Evaluate ``plan`` on ``feed``'s latest closed bars; ``latency_us`` of each signal counts
    from ``scheduled_ns`` (``time.monotonic_ns`` clock) to the moment it was computed. An epic
    with no closed bar yet yields no signals. With ``last`` (kept by the caller between ticks)
    a strategy whose newest closed bar was already evaluated returns its last signal unchanged."""
    out: list[Signal] = []
    for epic in plan.epics:
        candles = feed.latest(epic, plan.max_bars)
        if len(candles) == 0:
            continue
        for planned in plan.strategies:
            previous = None if last is None else last.get((epic, planned.name))
            newest = newest_closed_bar(candles, planned.timeframe, feed.now_ns)
            if previous is not None and previous.bar_timestamp_ns == newest:
                out.append(dataclasses.replace(
                    previous, latency_us=(time.monotonic_ns() - scheduled_ns) // 1000))
                continue
            bars = strategy_bars(candles, planned, feed.now_ns)
            if len(bars) == 0:
                continue
            position = int(planned.strategy.target_positions(bars, planned.params)[-1])
            signal = Signal(epic, planned.name, int(bars.timestamp[-1]), position,
                            float(bars.close[-1]), (time.monotonic_ns() - scheduled_ns) // 1000)
            if last is not None:
                last[(epic, planned.name)] = signal
            out.append(signal)
    return out


class SignalTracker:
    """The last position written per (epic, strategy): a scan becomes rows only on change
    (and once per pair after start, with ``previous`` NULL)."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], int] = {}

    def changes(self, signals: Sequence[Signal], *, scanned_at: dt.datetime,
                tick: int) -> list[dict[str, Any]]:
        rows = []
        for s in signals:
            previous = self._last.get((s.epic, s.strategy))
            if previous == s.position:
                continue
            rows.append({
                "scanned_at": scanned_at, "epic": s.epic, "strategy": s.strategy,
                "bar_timestamp": _utc(s.bar_timestamp_ns), "position": s.position,
                "previous": previous, "side": SIDES[s.position], "price": s.price,
                "latency_us": s.latency_us, "tick": tick,
            })
        return rows

    def commit(self, rows: Sequence[dict[str, Any]]) -> None:
        """Remember ``rows`` as written (call after their transaction committed)."""
        for row in rows:
            self._last[(row["epic"], row["strategy"])] = row["position"]


def _utc(ns: int) -> dt.datetime:
    seconds, rest = divmod(ns, 1_000_000_000)
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).replace(microsecond=rest // 1000)
