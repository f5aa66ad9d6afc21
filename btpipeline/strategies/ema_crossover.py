"""EMA crossover: long while the fast EMA is above the slow one, short while below."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from btpipeline.data.candles import Candles
from btpipeline.strategies.base import Strategy, decay_bars, ema_alpha
from btpipeline.strategies.crossings import above_below
from btpipeline.strategies.indicators import ema
from btpipeline.strategies.param_checks import require_less, require_period


@dataclass(frozen=True)
class EmaCrossoverParams:
    fast: int = 20
    slow: int = 50


class EmaCrossover(Strategy):
    name = "ema_crossover"
    params_type = EmaCrossoverParams

    def validate(self, values: dict[str, object]) -> dict[str, object]:
        out = {f: require_period(self.name, f, values[f], getattr(EmaCrossoverParams, f))
               for f in ("fast", "slow")}
        require_less(self.name, "fast", out["fast"], "slow", out["slow"])
        return {**out}

    def indicator_warmup_bars(self, params: EmaCrossoverParams) -> int:
        return decay_bars(ema_alpha(params.slow)) + 1

    def target_positions(self, candles: Candles, params: EmaCrossoverParams) -> np.ndarray:
        return above_below(ema(candles.close, params.fast), ema(candles.close, params.slow))


EMA_CROSSOVER = EmaCrossover()
