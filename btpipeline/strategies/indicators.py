"""Pure-numpy, vectorised indicators: EMA, Wilder RSI, rolling mean/std, MACD.

Inputs are never written (they may be read-only memory-mapped views); every function
returns a new float64 array of the input's length. Values that do not exist yet (before a
rolling window is full, before the RSI's first average) are NaN.

Inside ``with indicator_cache(candles):`` (a sweep chunk) the series of the candles' own
prices are computed once and shared, read-only (see indicator_cache.py).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from btpipeline.errors import InvalidParameterError
from btpipeline.strategies.indicator_cache import memoised
from btpipeline.strategies.recurrence import decay_recurrence

_ROLLING_CHUNK_ELEMENTS = 1 << 20  # bounds the temporary (rows x window) array of rolling_std


def _check_length(name: str, value: float, minimum: float) -> None:
    if not value >= minimum or not np.isfinite(value):
        raise InvalidParameterError(
            f"Invalid {name}: expected a finite number >= {minimum}, got {value!r}. "
            f"Fix: pass {name} >= {minimum}."
        )


def _as_float(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def ewm(x: np.ndarray, alpha: float) -> np.ndarray:
    """Exponential average seeded with ``x[0]``: ``e[t] = alpha*x[t] + (1-alpha)*e[t-1]``."""
    x = _as_float(x)
    if x.shape[0] == 0:
        return x.copy()
    return decay_recurrence(x, 1.0 - alpha, scale=alpha)


def ema(x: np.ndarray, span: float) -> np.ndarray:
    """EMA with ``alpha = 2/(span+1)``, seeded with ``x[0]`` (accuracy: see recurrence.py)."""
    _check_length("span", span, 1)
    return memoised("ema", x, (float(span),), lambda: ewm(x, 2.0 / (span + 1.0)))


def wilder_rsi(close: np.ndarray, period: int) -> np.ndarray:
    """Wilder's RSI: averages of gains/losses seeded with their simple mean over the first
    ``period`` changes (so ``rsi[period]`` is the first value), then smoothed with
    ``alpha = 1/period``. RSI = 100*gain/(gain+loss); 50 when both averages are 0."""
    _check_length("period", period, 1)
    return memoised("wilder_rsi", close, (int(period),), lambda: _wilder_rsi(close, period))


def _wilder_rsi(close: np.ndarray, period: int) -> np.ndarray:
    close = _as_float(close)
    n = close.shape[0]
    rsi = np.full(n, np.nan)
    if n <= period:
        return rsi
    change = np.diff(close)
    gain_avg = _wilder_average(np.maximum(change, 0.0), period)
    loss_avg = _wilder_average(np.maximum(-change, 0.0), period)
    total = gain_avg + loss_avg
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(total > 0, 100.0 * gain_avg / total, 50.0)
    rsi[period:] = value
    return rsi


def _wilder_average(values: np.ndarray, period: int) -> np.ndarray:
    """Smoothed average of ``values[period-1:]``, seeded by the mean of the first ``period``."""
    z = values[period - 1:] / period
    z[0] = values[:period].mean()
    return decay_recurrence(z, 1.0 - 1.0 / period)


def rolling_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values; the first ``window-1`` are NaN.

    Each value is computed from its own window only (no running sum), so it is bit-identical
    however much history precedes it: partitions split anywhere agree exactly.
    """
    _check_length("window", window, 1)
    return memoised("rolling_mean", x, (int(window),), lambda: _rolling_mean(x, window))


def _rolling_mean(x: np.ndarray, window: int) -> np.ndarray:
    x = _as_float(x)
    out = np.full(x.shape[0], np.nan)
    if x.shape[0] >= window:
        out[window - 1:] = sliding_window_view(x, window).mean(axis=1)
    return out


def rolling_std(x: np.ndarray, window: int, ddof: int = 0) -> np.ndarray:
    """Standard deviation (two-pass, population by default) of the last ``window`` values;
    the first ``window-1`` are NaN. Chunked so memory stays bounded for any window."""
    _check_length("window", window, ddof + 1)
    return memoised("rolling_std", x, (int(window), int(ddof)),
                    lambda: _rolling_std(x, window, ddof))


def _rolling_std(x: np.ndarray, window: int, ddof: int) -> np.ndarray:
    x = _as_float(x)
    out = np.full(x.shape[0], np.nan)
    if x.shape[0] < window:
        return out
    view = sliding_window_view(x, window)
    rows = max(1, _ROLLING_CHUNK_ELEMENTS // window)
    for lo in range(0, view.shape[0], rows):  # chunks of ~1M elements, not bars
        out[window - 1 + lo: window - 1 + lo + rows] = view[lo: lo + rows].std(axis=1, ddof=ddof)
    return out


def macd(close: np.ndarray, fast: int, slow: int, signal: int) -> tuple[np.ndarray, np.ndarray]:
    """``(macd_line, signal_line)``: EMA(fast) - EMA(slow), and the EMA(signal) of that line.
    In a sweep chunk the line is shared too: grids repeat each (fast, slow) pair for every
    signal span."""
    line = memoised("macd_line", close, (float(fast), float(slow)),
                    lambda: ema(close, fast) - ema(close, slow))
    return line, ema(line, signal)
