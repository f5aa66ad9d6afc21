"""What every strategy is: a name, a frozen parameter dataclass, a warm-up length, and a
function from candles to the position wanted after each bar closes.

Targets are int8 in {-1, 0, +1}; ``targets[t]`` uses only bars ``<= t`` (no look-ahead) and is
filled by the simulator at bar ``t+1``'s open.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from btpipeline.data.candles import Candles
from btpipeline.errors import InvalidParameterError

CONVERGENCE_TOLERANCE = 1e-13
"""Relative weight left on the seed of an exponential average once warmed up."""

HISTORY_MARGIN_BARS = 2880
"""Extra warm-up (two trading days of minutes) beyond indicator convergence, so that the signal
state and the entry fill of a position already open at a range start are reproduced too: a
range run on its own then reports the same fills and trade P&L as the same range inside a
longer run, unless that position (or a state-machine phase) began more than this many bars
before the converged part of the warm-up."""


def decay_bars(alpha: float, tolerance: float = CONVERGENCE_TOLERANCE) -> int:
    """Bars after which an exponential average's seed weighs less than ``tolerance``."""
    if alpha >= 1.0:
        return 0
    return math.ceil(math.log(tolerance) / math.log(1.0 - alpha))


def ema_alpha(span: float) -> float:
    return 2.0 / (span + 1.0)


def params_dict(params: object) -> dict[str, Any]:
    """A strategy's parameters as a plain JSON-able dict (ints stay ints, floats floats)."""
    return dict(dataclasses.asdict(params))  # type: ignore[call-overload]


def events_to_state(long_entry: np.ndarray, long_exit: np.ndarray,
                    short_entry: np.ndarray, short_exit: np.ndarray) -> np.ndarray:
    """Vectorised entry/exit state machine, as int8 positions.

    Long at ``t`` iff the latest long entry at or before ``t`` is later than the latest long
    exit at or before ``t`` (short likewise). This equals the bar-by-bar machine "if in a long
    and the exit condition holds, go flat; then if an entry condition holds, enter" when an
    entry bar is never also an exit bar of the same side and every long-entry bar is a
    short-exit bar (and vice versa): the strategies' threshold checks guarantee both.
    """
    idx = np.arange(long_entry.shape[0])

    def last(event: np.ndarray) -> np.ndarray:
        return np.maximum.accumulate(np.where(event, idx, -1)) if idx.size else idx

    state = np.zeros(idx.shape[0], dtype=np.int8)
    state[last(long_entry) > last(long_exit)] = 1
    state[last(short_entry) > last(short_exit)] = -1
    return state


def sign_targets(diff: np.ndarray) -> np.ndarray:
    """+1 where ``diff > 0``, -1 where ``diff < 0``, 0 where equal or NaN."""
    return np.greater(diff, 0).view(np.int8) - np.less(diff, 0).view(np.int8)


class Strategy(ABC):
    """One trading rule. Subclasses set ``name`` and ``params_type`` and implement the rest."""

    name: ClassVar[str]
    params_type: ClassVar[type]

    def make_params(self, overrides: Mapping[str, object] | None = None) -> Any:
        """Defaults with ``overrides`` applied; unknown keys and bad values raise
        ``InvalidParameterError`` naming the parameter and the fix."""
        overrides = dict(overrides or {})
        known = [f.name for f in dataclasses.fields(self.params_type)]
        for key in overrides:
            if key not in known:
                raise InvalidParameterError(
                    f"Unknown parameter {key!r} for strategy {self.name!r}: expected one of "
                    f"{', '.join(known)}, got {key!r}. Fix: remove it or use one of those names."
                )
        values = {**params_dict(self.params_type()), **overrides}
        return self.params_type(**self.validate(values))

    def coerce_params(self, params: Mapping[str, object] | object | None) -> Any:
        """Accept a mapping of overrides, ``None`` (defaults) or this strategy's params
        object (re-validated, since a dataclass can be built around ``make_params``)."""
        if isinstance(params, self.params_type):
            return self.make_params(params_dict(params))
        if params is None or isinstance(params, Mapping):
            return self.make_params(params)
        raise InvalidParameterError(
            f"Invalid params for strategy {self.name!r}: expected a mapping or "
            f"{self.params_type.__name__}, got {type(params).__name__}. "
            f"Fix: pass a dict of overrides such as {params_dict(self.params_type())}."
        )

    @abstractmethod
    def validate(self, values: dict[str, object]) -> dict[str, object]:
        """Checked and normalised field values; raises ``InvalidParameterError``."""

    @abstractmethod
    def indicator_warmup_bars(self, params: Any) -> int:
        """Bars before a range start after which indicators equal an unbounded history's
        to ~1e-12 relative."""

    def warmup_bars(self, params: Any) -> int:
        """History to read before a range start: indicator convergence plus
        ``HISTORY_MARGIN_BARS`` for the signal state and open position (see there)."""
        return self.indicator_warmup_bars(params) + HISTORY_MARGIN_BARS

    @abstractmethod
    def target_positions(self, candles: Candles, params: Any) -> np.ndarray:
        """int8 positions in {-1, 0, +1} wanted after each bar closes (no look-ahead)."""
