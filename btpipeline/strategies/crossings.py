"""Where one series stands against another, and where it crosses it: vectorised, NaN-safe.

``above_below`` is the side (+1 above, -1 below, 0 equal or NaN) the built-in EMA and MACD
crossovers hold as their target position. ``crossover``/``crossunder`` are the bars where that
side flips, with the semantics of backtesting.py's ``lib.crossover`` evaluated at every bar
at once: ``crossover(a, b)[t]`` is True iff ``a[t-1] < b[t-1]`` and ``a[t] > b[t]``. A bar
where the series touch (equal) or either value is NaN is neither above nor below, so a cross
through a touch or a gap is not reported. Bar 0 never crosses.
"""

from __future__ import annotations

import numpy as np

from btpipeline.strategies.base import sign_targets


def above_below(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    """int8 side of ``a`` against ``b`` per bar: +1 where ``a > b``, -1 where ``a < b``, 0 where
    equal or either is NaN. ``b`` may be a scalar (a level such as 0 or 70)."""
    with np.errstate(invalid="ignore"):
        return sign_targets(np.asarray(a, dtype=np.float64) - b)


def _flips(side: np.ndarray, before: int, after: int) -> np.ndarray:
    out = np.zeros(side.shape[0], dtype=bool)
    out[1:] = (side[:-1] == before) & (side[1:] == after)
    return out


def crossover(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    """bool per bar: ``a`` was below ``b`` on the previous bar and is above it on this one."""
    return _flips(above_below(a, b), -1, 1)


def crossunder(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    """bool per bar: ``a`` was above ``b`` on the previous bar and is below it on this one."""
    return _flips(above_below(a, b), 1, -1)
