"""One scan: the latest target position of every epic x strategy, from the strategy kernels.

Each strategy's ``target_positions`` runs on the last ``warmup_bars`` bars (indicator
convergence plus the state margin: the same history a backtest reads before a range start),
and the scanner keeps the value of the newest bar. No strategy logic lives here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Sequence
from typing import Any

from btpipeline.epics import get_epic
from btpipeline.scanner.feed import CandleFeed
from btpipeline.strategies import Strategy, get_strategy

SIDES = {1: "BUY", -1: "SELL", 0: "FLAT"}


@dataclasses.dataclass(frozen=True)
class PlannedStrategy:
    """A strategy with its (default) parameters and the bars one evaluation reads."""

    name: str
    strategy: Strategy
    params: Any
    bars: int


@dataclasses.dataclass(frozen=True)
class ScanPlan:
    """What every tick evaluates: ``epics`` x ``strategies``."""

    epics: tuple[str, ...]
    strategies: tuple[PlannedStrategy, ...]

    @classmethod
    def build(cls, epics: Sequence[str], strategies: Sequence[str]) -> ScanPlan:
        """Check the names (unknown ones raise with the known list) and size the warm-ups."""
        planned = []
        for name in dict.fromkeys(strategies):
            strategy = get_strategy(name)
            params = strategy.make_params()
            planned.append(PlannedStrategy(name, strategy, params, strategy.warmup_bars(params)))
        return cls(tuple(get_epic(e).name for e in dict.fromkeys(epics)), tuple(planned))

    @property
    def max_bars(self) -> int:
        return max((s.bars for s in self.strategies), default=1)


@dataclasses.dataclass(frozen=True)
class Signal:
    """The position wanted after ``bar_timestamp_ns``'s bar (open time, epoch ns) closed."""

    epic: str
    strategy: str
    bar_timestamp_ns: int
    position: int
    price: float
    latency_us: int


def scan(feed: CandleFeed, plan: ScanPlan, scheduled_ns: int) -> list[Signal]:
    """Evaluate ``plan`` on ``feed``'s latest bars; ``latency_us`` of each signal counts from
    ``scheduled_ns`` (``time.monotonic_ns`` clock) to the moment it was computed. An epic with
    no closed bar yet yields no signals."""
    out: list[Signal] = []
    for epic in plan.epics:
        candles = feed.latest(epic, plan.max_bars)
        n = len(candles)
        if n == 0:
            continue
        for planned in plan.strategies:
            window = candles.take(slice(max(n - planned.bars, 0), n))
            position = int(planned.strategy.target_positions(window, planned.params)[-1])
            out.append(Signal(epic, planned.name, int(window.timestamp[-1]), position,
                              float(window.close[-1]),
                              (time.monotonic_ns() - scheduled_ns) // 1000))
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
