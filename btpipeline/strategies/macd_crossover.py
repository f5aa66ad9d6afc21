"""MACD crossover: long while the MACD line is above its signal line, short while below."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from btpipeline.data.candles import Candles
from btpipeline.strategies.base import Strategy, decay_bars, ema_alpha
from btpipeline.strategies.crossings import above_below
from btpipeline.strategies.indicators import macd
from btpipeline.strategies.param_checks import require_less, require_period


@dataclass(frozen=True)
class MacdParams:
    fast: int = 12
    slow: int = 26
    signal: int = 9


class MacdCrossover(Strategy):
    """Always in the market once the line and signal differ (from the second bar on)."""

    name = "macd_crossover"
    params_type = MacdParams

    def validate(self, values: dict[str, object]) -> dict[str, object]:
        out = {f: require_period(self.name, f, values[f], getattr(MacdParams, f))
               for f in ("fast", "slow", "signal")}
        require_less(self.name, "fast", out["fast"], "slow", out["slow"])
        return {**out}

    def indicator_warmup_bars(self, params: MacdParams) -> int:
        """Slowest EMA's seed decay, plus the signal span: the signal EMA inherits the MACD
        line's residual error, amplified by at most ~1.5x, which the extra span absorbs."""
        spans = (params.fast, params.slow, params.signal)
        return max(decay_bars(ema_alpha(s)) for s in spans) + params.signal + 1

    def target_positions(self, candles: Candles, params: MacdParams) -> np.ndarray:
        line, signal = macd(candles.close, params.fast, params.slow, params.signal)
        return above_below(line, signal)


MACD_CROSSOVER = MacdCrossover()
