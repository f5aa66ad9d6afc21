"""Turn a backtest's inputs (DataFrames, metrics, params) into rows for the results tables.

Everything here is checked before the database is touched, so a bad input fails with a
message naming the column and row, and nothing is written.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from btpipeline.errors import ResultsDatabaseError
from btpipeline.results.fill_blocks import ACTIONS, ENCODING, SIDES, FillColumns, codes, encode
from btpipeline.results.tables import COUNT_COLUMNS, METRIC_COLUMNS

FILL_COLUMNS: tuple[str, ...] = ("timestamp", "side", "action", "price", "size", "pnl",
                                 "partition_key")
DAILY_COLUMNS: tuple[str, ...] = ("day", "pnl", "bars", "bars_in_market", "partition_key")
FILL_REQUIRED: tuple[str, ...] = tuple(c for c in FILL_COLUMNS if c != "pnl")  # pnl: optional


def check_keys(partition_keys: Sequence[str]) -> list[str]:
    keys = sorted({str(k) for k in partition_keys})
    if not keys:
        raise ResultsDatabaseError(
            "No partition keys were given, so there is nothing to write. Fix: pass the run's "
            "partition keys (context.partition_keys).")
    return keys


def utc(value: dt.datetime, name: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        raise ResultsDatabaseError(
            f"{name}={value!r} is not a timezone-aware datetime; nothing was written. "
            "Fix: pass datetime.now(timezone.utc) or another aware datetime.")
    return value.astimezone(dt.timezone.utc)


def _check_frame(frame: pd.DataFrame, name: str, required: Sequence[str],
                 keys: Sequence[str]) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ResultsDatabaseError(
            f"{name} lacks column(s) {missing}; it has {list(frame.columns)}. Nothing was "
            f"written. Fix: provide columns {list(required)}.")
    for column in required:
        bad = np.flatnonzero(frame[column].isna().to_numpy())
        if len(bad):
            raise ResultsDatabaseError(
                f"{name} column {column!r} is empty (NaN/None) at row {int(bad[0])} "
                f"({len(bad)} row(s) in all); it may not be. Nothing was written. "
                "Fix: drop or repair those rows before writing.")
    stray = sorted(set(pd.unique(frame["partition_key"].astype(str))) - set(keys))
    if stray:
        raise ResultsDatabaseError(
            f"{name} has rows for partition(s) {stray[:5]} outside the ones being written "
            f"({keys[0]}..{keys[-1]}). Nothing was written. Fix: give every row one of "
            "partition_keys, or add its partition to partition_keys.")


@dataclasses.dataclass(frozen=True)
class RowBatch:
    """Rows for one table, held as columns so that no per-row Python object is built.

    ``columns`` vary per row (equal-length numpy arrays or lists); ``constants`` are the same
    on every row (strategy, epic, run_id). Timestamps are ``datetime64[us]`` arrays in UTC;
    floats may hold NaN for NULL. The writer turns them into what each database takes.
    """

    columns: Mapping[str, Any]
    constants: Mapping[str, Any]

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    @property
    def names(self) -> list[str]:
        return [*self.constants, *self.columns]


def _timestamps(values: pd.Series) -> np.ndarray:
    """UTC instants as ``datetime64[us]`` (the precision both databases store)."""
    if pd.api.types.is_datetime64_dtype(values.dtype) and values.dt.tz is None:
        raise ResultsDatabaseError(
            "fills column 'timestamp' is timezone-naive; nothing was written. Fix: make it "
            "datetime64[ns, UTC] (e.g. pd.to_datetime(..., utc=True) or .dt.tz_localize('UTC')).")
    stamps = pd.to_datetime(values, utc=True).dt.tz_localize(None)
    return stamps.to_numpy(dtype="datetime64[us]")


def fill_blocks(fills: pd.DataFrame, keys: Sequence[str], common: Mapping[str, str]
                ) -> list[dict[str, Any]]:
    """``backtest_fill_blocks`` rows: one per partition that has fills, its fills encoded in
    the order given (that order is their ``seq``)."""
    if fills.empty:
        return []
    _check_frame(fills, "fills", FILL_REQUIRED, keys)
    labels, months = pd.factorize(fills["partition_key"].astype(str))
    order = np.argsort(labels, kind="stable")  # each month's rows, in the order given
    bounds = np.searchsorted(labels[order], np.arange(len(months) + 1))
    pnl = fills["pnl"] if "pnl" in fills.columns else pd.Series(np.nan, index=fills.index)
    columns = FillColumns(
        timestamp=_timestamps(fills["timestamp"]),
        side=codes(fills["side"].astype(str).str.upper().reset_index(drop=True), SIDES, "side"),
        action=codes(fills["action"].astype(str).str.upper().reset_index(drop=True), ACTIONS,
                     "action"),
        price=fills["price"].astype(float).to_numpy(),
        size=fills["size"].astype(float).to_numpy(),
        pnl=pnl.astype(float).to_numpy())  # NaN: none
    blocks = []
    for label, key in sorted(enumerate(str(m) for m in months), key=lambda item: item[1]):
        part = columns.take(order[bounds[label]:bounds[label + 1]])
        stamps = part.timestamp
        blocks.append({**common, "partition_key": key, "fills": len(part),
                       "first_timestamp": _aware(stamps.min()),
                       "last_timestamp": _aware(stamps.max()),
                       "encoding": ENCODING, "data": encode(part)})
    return blocks


def _aware(stamp: np.datetime64) -> dt.datetime:
    micros = int(stamp.astype("datetime64[us]").astype(np.int64))
    return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=micros)


def _day_strings(days: pd.Series) -> np.ndarray:
    return pd.to_datetime(days.astype(str)).dt.strftime("%Y-%m-%d").to_numpy(dtype=object)


def daily_rows(daily: pd.DataFrame, keys: Sequence[str], common: Mapping[str, str]) -> RowBatch:
    if daily.empty:
        return RowBatch({}, common)
    _check_frame(daily, "daily", DAILY_COLUMNS, keys)
    return RowBatch({
        "partition_key": daily["partition_key"].astype(str).to_numpy(dtype=object),
        "day": _day_strings(daily["day"]),
        "pnl": daily["pnl"].astype(float).to_numpy(),
        "bars": daily["bars"].astype(np.int64).to_numpy(),
        "bars_in_market": daily["bars_in_market"].astype(np.int64).to_numpy(),
    }, common)


def finite_or_none(value: Any) -> float | None:
    """A float metric, or None when missing or non-finite (see tables.py: inf is stored NULL)."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def metric_values(metrics: Mapping[str, Any], bars: int | None) -> dict[str, Any]:
    """The execution row's metric columns; unknown metric names are ignored."""
    values: dict[str, Any] = {name: finite_or_none(metrics.get(name)) for name in METRIC_COLUMNS}
    for name in COUNT_COLUMNS:
        count = finite_or_none(metrics.get(name))
        values[name] = int(count) if count is not None else None
    if values["bars"] is None:
        values["bars"] = bars
    return values


def json_params(params: Mapping[str, Any] | Any) -> Any:
    """``params`` as plain JSON (numpy scalars unwrapped, dataclasses as dicts, inf/NaN null)."""
    if dataclasses.is_dataclass(params) and not isinstance(params, type):
        params = dataclasses.asdict(params)
    return json.loads(json.dumps(_plain(params), default=str))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
