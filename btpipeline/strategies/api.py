"""The public API for writing a strategy: everything a user module needs, in one import.

    from btpipeline.strategies.api import Candles, Strategy, crossover, ema, events_to_state

A strategy is a ``Strategy`` subclass with ``name``, ``params_type`` (a frozen dataclass with
defaults), ``validate`` (check and normalise the parameter values; ``require_period``,
``require_number`` and ``require_less`` raise errors that name the parameter and the fix),
``indicator_warmup_bars`` and ``target_positions`` (int8 in {-1, 0, +1} per bar, from that bar
and earlier ones only). See examples/strategies/donchian_breakout.py. Names here are stable;
anything else in btpipeline.strategies may move.
"""

from btpipeline.data.candles import Candles
from btpipeline.errors import InvalidParameterError
from btpipeline.strategies.base import (
    Strategy,
    decay_bars,
    ema_alpha,
    events_to_state,
    params_dict,
    sign_targets,
)
from btpipeline.strategies.crossings import above_below, crossover, crossunder
from btpipeline.strategies.indicators import ema, macd, rolling_mean, rolling_std, wilder_rsi
from btpipeline.strategies.param_checks import require_less, require_number, require_period

__all__ = [
    "Candles", "InvalidParameterError", "Strategy", "above_below", "crossover", "crossunder",
    "decay_bars", "ema", "ema_alpha", "events_to_state", "macd", "params_dict", "require_less",
    "require_number", "require_period", "rolling_mean", "rolling_std", "sign_targets",
    "wilder_rsi",
]
