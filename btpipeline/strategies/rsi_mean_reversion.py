"""RSI mean reversion: long when RSI < lower, short when RSI > upper, flat when RSI comes
back to the exit level (a long exits at RSI >= exit, a short at RSI <= exit)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from btpipeline.data.candles import Candles
from btpipeline.strategies.base import Strategy, decay_bars, events_to_state
from btpipeline.strategies.indicators import wilder_rsi
from btpipeline.strategies.param_checks import require_less, require_number, require_period


@dataclass(frozen=True)
class RsiParams:
    period: int = 14
    lower: float = 30.0
    upper: float = 70.0
    exit: float = 50.0


class RsiMeanReversion(Strategy):
    """State machine evaluated per bar: exit first, then entry; vectorised by comparing the
    latest entry and exit events (``events_to_state``). Requires lower < exit < upper."""

    name = "rsi_mean_reversion"
    params_type = RsiParams

    def validate(self, values: dict[str, object]) -> dict[str, object]:
        period = require_period(self.name, "period", values["period"], 14)
        levels = {field: require_number(self.name, field, values[field], default, 0.0, 100.0)
                  for field, default in (("lower", 30.0), ("upper", 70.0), ("exit", 50.0))}
        require_less(self.name, "lower", levels["lower"], "upper", levels["upper"])
        require_less(self.name, "lower", levels["lower"], "exit", levels["exit"])
        require_less(self.name, "exit", levels["exit"], "upper", levels["upper"])
        return {"period": period, **levels}

    def indicator_warmup_bars(self, params: RsiParams) -> int:
        return params.period + decay_bars(1.0 / params.period) + 1

    def target_positions(self, candles: Candles, params: RsiParams) -> np.ndarray:
        rsi = wilder_rsi(candles.close, params.period)
        with np.errstate(invalid="ignore"):
            return events_to_state(rsi < params.lower, rsi >= params.exit,
                                   rsi > params.upper, rsi <= params.exit)


RSI_MEAN_REVERSION = RsiMeanReversion()
