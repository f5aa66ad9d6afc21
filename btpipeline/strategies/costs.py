"""Trading costs of one fill: half the spread and the slippage against the trader, plus a
commission per 100,000 units per side (all in the quote currency)."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from btpipeline.epics import Epic
from btpipeline.errors import InvalidParameterError

LOT_UNITS = 100_000.0


def _check(field: str, value: float, positive: bool) -> None:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > 0 if positive else value >= 0)
    if not ok:
        expected = "a finite number > 0" if positive else "a finite number >= 0"
        raise InvalidParameterError(
            f"Invalid cost parameter {field!r}: expected {expected}, got {value!r}. "
            f"Fix: pass {field} as {expected} (costs always work against the trader)."
        )


@dataclass(frozen=True)
class CostModel:
    spread_pips: float
    pip_size: float
    commission_per_lot: float = 0.0
    slippage_pips: float = 0.0

    def __post_init__(self) -> None:
        _check("spread_pips", self.spread_pips, positive=False)
        _check("pip_size", self.pip_size, positive=True)
        _check("commission_per_lot", self.commission_per_lot, positive=False)
        _check("slippage_pips", self.slippage_pips, positive=False)

    @classmethod
    def for_epic(cls, epic: Epic, spread_pips: float | None = None,
                 commission_per_lot: float = 0.0, slippage_pips: float = 0.0) -> CostModel:
        """The epic's pip size and catalogue spread (unless ``spread_pips`` overrides it)."""
        spread = epic.spread_pips if spread_pips is None else spread_pips
        return cls(spread_pips=spread, pip_size=epic.pip_size,
                   commission_per_lot=commission_per_lot, slippage_pips=slippage_pips)

    @property
    def price_offset(self) -> float:
        """How far from the mid a fill happens: half spread plus slippage, in price units."""
        return (self.spread_pips / 2.0 + self.slippage_pips) * self.pip_size

    def commission(self, size_units: Any) -> Any:
        """Commission of one fill of ``size_units`` (a float, or an array of fill sizes)."""
        return self.commission_per_lot * size_units / LOT_UNITS
