"""Shared pieces of the results-database fault tests: a deterministic write and its checksum."""

from __future__ import annotations

import datetime as dt
import hashlib

import pandas as pd

from btpipeline.resources.results_database import ResultsDatabase

KEYS = ["2024-01-01", "2024-02-01", "2024-03-01"]
T0 = dt.datetime(2024, 4, 1, tzinfo=dt.timezone.utc)


def frames(scale: float = 1.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A month-spanning set of fills and daily rows (400 fills per month)."""
    stamps = pd.concat([pd.Series(pd.date_range(f"{k} 00:05", periods=400, freq="37min",
                                                tz="UTC")) for k in KEYS], ignore_index=True)
    n = len(stamps)
    fills = pd.DataFrame({"timestamp": stamps, "side": ["BUY", "SELL"] * (n // 2),
                          "action": ["OPEN", "CLOSE"] * (n // 2), "price": 1.1 * scale,
                          "size": 100_000.0, "pnl": [None, 2.5 * scale] * (n // 2)})
    fills["partition_key"] = fills["timestamp"].dt.strftime("%Y-%m-01")
    days = pd.date_range("2024-01-01", "2024-03-31", freq="D")
    daily = pd.DataFrame({"day": days.strftime("%Y-%m-%d"), "pnl": 1.0 * scale,
                          "bars": 1440, "bars_in_market": 100})
    daily["partition_key"] = daily["day"].str.slice(0, 7) + "-01"
    return fills, daily


def write(db: ResultsDatabase, run_id: str, scale: float = 1.0, **extra) -> None:
    fills, daily = frames(scale)
    db.write_backtest(strategy="macd_crossover", epic="EURUSD", partition_keys=KEYS,
                      run_id=run_id, params={"fast": 12}, started_at=T0, finished_at=T0,
                      metrics={"total_return": 0.01 * scale, "num_trades": 600}, fills=fills,
                      daily=daily, **extra)


def partition_digest(db: ResultsDatabase) -> dict[str, tuple[int, str]]:
    """Rows and a checksum of the fills of every partition."""
    fills = db.read_signals(strategy="macd_crossover", epic="EURUSD")
    out = {}
    for key, part in fills.groupby("partition_key"):
        text = part[["seq", "timestamp", "side", "price", "run_id"]].to_csv(index=False)
        out[str(key)] = (len(part), hashlib.sha256(text.encode()).hexdigest()[:16])
    return out
