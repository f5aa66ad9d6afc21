"""The contract every strategy the universe names is held to, checked at load on a small
deterministic candle set before anything runs or is stored:

* one target per bar (``len(targets) == len(candles)``, a 1-D array);
* integer dtype with values in {-1, 0, 1};
* no look-ahead: the targets of a prefix of the candles equal the same prefix of the targets of
  all of them, at several cut points. A strategy that reads a later bar (``close[t+1]``, a
  centred window, a normalisation by the whole series' mean) gives other values near the cut.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from btpipeline.data.candles import Candles
from btpipeline.errors import StrategyError
from btpipeline.strategies.base import Strategy

MIN_BARS = 2_000
MAX_BARS = 20_000
CUTS = 12
_START_NS = 1_704_232_800 * 1_000_000_000  # 2024-01-02 22:00 UTC
_NS_PER_MINUTE = 60 * 1_000_000_000


def check_candles(bars: int, seed: int = 20240102) -> Candles:
    """A deterministic 1-minute random walk around 1.1 with trends, ranges and valid OHLC."""
    rng = np.random.default_rng(seed)
    regime = np.repeat(rng.normal(0.0, 2e-5, bars // 200 + 1), 200)[:bars]  # drifting spells
    close = 1.1 * np.exp(np.cumsum(regime + rng.normal(0.0, 3e-4, bars)))
    open_ = np.concatenate(([1.1], close[:-1]))
    wick = np.abs(rng.normal(0.0, 1.5e-4, (2, bars)))
    high = np.maximum(open_, close) + wick[0]
    low = np.minimum(open_, close) - wick[1]
    volume = np.rint(50 + 20 * np.abs(rng.normal(size=bars)))
    timestamp = _START_NS + np.arange(bars, dtype=np.int64) * _NS_PER_MINUTE
    return Candles(timestamp, open_, high, low, close, volume)


def check_bars(strategy: Strategy, params: Any) -> int:
    """Enough bars for the indicators to warm up several times over, within bounds."""
    try:
        warmup = int(strategy.indicator_warmup_bars(params))
    except Exception:  # reported by the contract checks below if it matters
        warmup = 0
    return int(np.clip(3 * warmup + 1_000, MIN_BARS, MAX_BARS))


def check_strategy(strategy: Strategy, params: Any, *, variant: str | None = None) -> None:
    """Raise ``StrategyError`` naming ``variant`` and the strategy if ``strategy`` with
    ``params`` breaks the target-positions contract (see the module docstring)."""
    label = _label(strategy, variant)
    candles = check_candles(check_bars(strategy, params))
    full = _targets(strategy, params, candles, label)
    n = len(candles)
    for cut in np.linspace(n // 8, n - 1, CUTS).astype(int):
        part = _targets(strategy, params, candles.take(slice(0, int(cut))), label)
        bad = np.flatnonzero(part != full[:cut])
        if bad.size:
            i = int(bad[0])
            raise StrategyError(
                f"{label} looks ahead: its target at bar {i} is {int(part[i])} when the candles "
                f"end at bar {cut - 1}, but {int(full[i])} when later bars exist; expected a "
                "target that uses only bars up to its own (no look-ahead). Fix: compute each "
                "bar's target from that bar and earlier ones only (no shift(-1), no centred "
                "windows, no statistics of the whole series).")


def _label(strategy: Strategy, variant: str | None) -> str:
    name = getattr(strategy, "name", type(strategy).__name__)
    where = f"{type(strategy).__module__}.{type(strategy).__qualname__}"
    return (f"variant {variant!r} (strategy {name!r}, {where})" if variant
            else f"strategy {name!r} ({where})")


def _targets(strategy: Strategy, params: Any, candles: Candles, label: str) -> np.ndarray:
    try:
        targets = strategy.target_positions(candles, params)
    except Exception as error:
        raise StrategyError(
            f"{label}: target_positions raised {type(error).__name__}: {error} on {len(candles)} "
            "synthetic bars; expected an array of targets. Fix: make it run on any candles "
            "(a short history gives NaN indicators, which should mean flat).") from error
    return _checked(np.asarray(targets) if targets is not None else targets, len(candles), label)


def _checked(targets: np.ndarray | None, bars: int, label: str) -> np.ndarray:
    fix = "Fix: return one int8 target per bar, e.g. sign_targets(...) or events_to_state(...)."
    if targets is None or targets.ndim != 1 or targets.shape[0] != bars:
        found = "None" if targets is None else f"shape {targets.shape}"
        raise StrategyError(f"{label}: target_positions returned the wrong length: expected "
                            f"shape ({bars},) (one target per bar), found {found}. {fix}")
    if not np.issubdtype(targets.dtype, np.integer):
        raise StrategyError(f"{label}: target_positions returned dtype {targets.dtype}; "
                            f"expected an integer dtype (int8) with values in {{-1, 0, 1}}. {fix}")
    wrong = np.flatnonzero((targets < -1) | (targets > 1))
    if wrong.size:
        i = int(wrong[0])
        raise StrategyError(f"{label}: target_positions returned {int(targets[i])} at bar {i}; "
                            f"expected values in {{-1, 0, 1}} only. {fix}")
    return targets
