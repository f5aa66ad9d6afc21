"""Per-UTC-day aggregation of bar-level P&L and exposure."""

from __future__ import annotations

import numpy as np
import pandas as pd

NS_PER_DAY = 86_400 * 1_000_000_000
DAILY_COLUMNS = ["day", "pnl", "bars", "bars_in_market"]


def daily_table(timestamps: np.ndarray, bar_pnl: np.ndarray, positions: np.ndarray) -> pd.DataFrame:
    """One row per UTC date that has bars: day ('YYYY-MM-DD'), pnl (sum of bar P&L), bars,
    bars_in_market (bars held with a non-zero position). Timestamps must be increasing."""
    if timestamps.shape[0] == 0:
        return pd.DataFrame({"day": pd.Series(dtype=object), "pnl": pd.Series(dtype=np.float64),
                             "bars": pd.Series(dtype=np.int64),
                             "bars_in_market": pd.Series(dtype=np.int64)})
    days, starts = day_starts(timestamps)
    bars = np.diff(np.append(starts, timestamps.shape[0])).astype(np.int64)
    in_market = np.add.reduceat((positions != 0).astype(np.int64), starts)
    return pd.DataFrame({
        "day": days.astype(str).astype(object),
        "pnl": np.add.reduceat(bar_pnl, starts),
        "bars": bars,
        "bars_in_market": in_market.astype(np.int64),
    })


def day_starts(timestamps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The UTC dates (``datetime64[D]``) that have bars and the index of each one's first bar
    (timestamps increasing): one binary search per calendar day, not a pass over the bars."""
    stamps = np.asarray(timestamps, dtype=np.int64)
    if stamps.shape[0] == 0:
        return np.array([], dtype="datetime64[D]"), np.array([], dtype=np.int64)
    first, last = int(stamps[0]) // NS_PER_DAY, int(stamps[-1]) // NS_PER_DAY
    calendar = np.arange(first, last + 1, dtype=np.int64)
    starts = np.searchsorted(stamps, calendar * NS_PER_DAY, side="left")
    starts[0] = 0
    ends = np.append(starts[1:], stamps.shape[0])
    has_bars = starts < ends
    return calendar[has_bars].astype("datetime64[D]"), starts[has_bars].astype(np.int64)

