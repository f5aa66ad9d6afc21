"""The trade list: each CLOSE fill paired with the OPEN fill before it.

The simulator's fills alternate OPEN, CLOSE, OPEN, ... per instrument (a reversal is a CLOSE
then an OPEN at the same bar), so walking an instrument's fills in stored order
(partition_key, seq) pairs every CLOSE with the OPEN that precedes it. A CLOSE whose OPEN lies
before the stored range (opened during warm-up) keeps its row, with no entry time or price:
the list always has exactly one row per CLOSE fill.
"""

from __future__ import annotations

import pandas as pd

TRADE_COLUMNS = ["instrument", "entry_time", "exit_time", "side", "entry_price", "exit_price",
                 "size", "pnl", "duration"]


def pair_trades(instrument: str, fills: pd.DataFrame, factor: float = 1.0) -> pd.DataFrame:
    """One row per CLOSE fill of ``fills`` (one instrument, stored order); P&L times
    ``factor`` (quote to account currency)."""
    fills = fills.reset_index(drop=True)
    previous = fills.shift(1)
    closes = fills["action"] == "CLOSE"
    has_entry = (previous["action"] == "OPEN") & closes
    entry_time = previous["timestamp"].where(has_entry)[closes]
    exit_ = fills[closes]
    # Closing a long is a SELL fill, closing a short a BUY fill.
    frame = pd.DataFrame({
        "instrument": instrument,
        "entry_time": entry_time,
        "exit_time": exit_["timestamp"],
        "side": exit_["side"].map({"SELL": "LONG", "BUY": "SHORT"}),
        "entry_price": previous["price"].where(has_entry)[closes].astype(float),
        "exit_price": exit_["price"].astype(float),
        "size": exit_["size"].astype(float),
        "pnl": exit_["pnl"].astype(float) * factor,
    }, columns=TRADE_COLUMNS[:-1])
    return _frame(frame)


def _frame(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.reindex(columns=TRADE_COLUMNS[:-1]).reset_index(drop=True)
    for column in ("entry_time", "exit_time"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame.assign(duration=frame["exit_time"] - frame["entry_time"])


def concat_trades(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """All instruments' trades, by exit time."""
    kept = [f for f in frames if not f.empty]
    if not kept:
        return _frame(pd.DataFrame())
    joined = pd.concat(kept, ignore_index=True)
    return joined.sort_values(["exit_time", "instrument"], kind="stable").reset_index(drop=True)
