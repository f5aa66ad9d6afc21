"""A user strategy written against the public API only: a Donchian channel breakout.

Long when the close crosses above the highest high of the previous ``window`` bars, short
when it crosses below the lowest low of them; a long is closed when the close crosses under
the channel's middle, a short when it crosses over it. Use it from a universe file as
``strategy: examples.strategies.donchian_breakout:DonchianBreakout``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from btpipeline.strategies.api import (
    Candles,
    Strategy,
    crossover,
    crossunder,
    events_to_state,
    require_number,
    require_period,
)


@dataclass(frozen=True)
class DonchianParams:
    window: int = 55  # bars in the channel (the current bar excluded)
    exit_fraction: float = 0.5  # where the exit line sits in the channel: 0 low .. 1 high


def previous_extreme(values: np.ndarray, window: int, highest: bool) -> np.ndarray:
    """Max (or min) of the ``window`` bars BEFORE each bar; NaN until that many exist."""
    out = np.full(values.shape[0], np.nan)
    if values.shape[0] > window:
        view = sliding_window_view(np.asarray(values, dtype=np.float64)[:-1], window)
        out[window:] = view.max(axis=1) if highest else view.min(axis=1)
    return out


class DonchianBreakout(Strategy):
    name = "donchian_breakout"
    params_type = DonchianParams

    def validate(self, values: dict[str, object]) -> dict[str, object]:
        return {"window": require_period(self.name, "window", values["window"], 55),
                "exit_fraction": require_number(self.name, "exit_fraction",
                                                values["exit_fraction"], 0.5, 0.0, 1.0)}

    def indicator_warmup_bars(self, params: DonchianParams) -> int:
        """The channel depends on its own window only: exact once it is full."""
        return params.window + 1

    def target_positions(self, candles: Candles, params: DonchianParams) -> np.ndarray:
        close = np.asarray(candles.close, dtype=np.float64)
        upper = previous_extreme(candles.high, params.window, highest=True)
        lower = previous_extreme(candles.low, params.window, highest=False)
        exit_line = lower + params.exit_fraction * (upper - lower)
        long_entry, short_entry = crossover(close, upper), crossunder(close, lower)
        return events_to_state(long_entry, crossunder(close, exit_line) | short_entry,
                               short_entry, crossover(close, exit_line) | long_entry)
