"""The worst drawdown periods of an equity curve (as quantstats' tearsheet lists them)."""

from __future__ import annotations

import pandas as pd

PERIOD_COLUMNS = ["start", "valley", "end", "depth", "days"]


def drawdown_periods(drawdown: pd.Series, top: int = 5) -> pd.DataFrame:
    """The ``top`` deepest periods below a previous peak of ``drawdown`` (fractions <= 0,
    indexed by day): the last day at the peak (start), the deepest day (valley), the day the
    peak is regained (end; NaT while still under water), depth (< 0) and calendar days."""
    under = drawdown < 0
    period = (under != under.shift(fill_value=False)).cumsum()[under]
    rows = [_period(drawdown, days.index) for _, days in period.groupby(period)]
    table = pd.DataFrame(rows, columns=PERIOD_COLUMNS)
    return table.sort_values("depth", kind="stable").head(top).reset_index(drop=True)


def _period(drawdown: pd.Series, days: pd.Index) -> dict:
    position = drawdown.index.get_loc(days[0])
    start = drawdown.index[position - 1] if position > 0 else days[0]
    after = drawdown.index.get_loc(days[-1]) + 1
    end = drawdown.index[after] if after < len(drawdown) else pd.NaT
    valley = drawdown.loc[days].idxmin()
    last = end if not pd.isna(end) else days[-1]
    return {"start": start, "valley": valley, "end": end,
            "depth": float(drawdown.loc[days].min()), "days": int((last - start).days)}
