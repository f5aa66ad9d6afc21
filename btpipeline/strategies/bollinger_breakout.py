"""Bollinger breakout: long on a close above the upper band, short on a close below the
lower band, flat when the close comes back to the middle band (a long exits at
close <= middle, a short at close >= middle). Bands: rolling mean +- k population std."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from btpipeline.data.candles import Candles
from btpipeline.strategies.base import Strategy, events_to_state
from btpipeline.strategies.indicators import rolling_mean, rolling_std
from btpipeline.strategies.param_checks import require_number, require_period


@dataclass(frozen=True)
class BollingerParams:
    window: int = 20
    k: float = 2.0


class BollingerBreakout(Strategy):
    name = "bollinger_breakout"
    params_type = BollingerParams

    def validate(self, values: dict[str, object]) -> dict[str, object]:
        return {"window": require_period(self.name, "window", values["window"], 20),
                "k": require_number(self.name, "k", values["k"], 2.0, low=0.0, low_open=True)}

    def indicator_warmup_bars(self, params: BollingerParams) -> int:
        """Each band value depends on its own window only, so it is exact after it."""
        return params.window

    def target_positions(self, candles: Candles, params: BollingerParams) -> np.ndarray:
        close = np.asarray(candles.close, dtype=np.float64)
        middle = rolling_mean(close, params.window)
        width = params.k * rolling_std(close, params.window)
        with np.errstate(invalid="ignore"):
            return events_to_state(close > middle + width, close <= middle,
                                   close < middle - width, close >= middle)


BOLLINGER_BREAKOUT = BollingerBreakout()
