"""A month of fills as one compressed columnar block (the ``data`` of ``backtest_fill_blocks``).

Why blocks (see ``tables.py``): one SQL row per fill cost ~200 bytes a fill in SQLite and
more time to write than the backtest took to compute. A block holds one
(variant, epic, month)'s fills, in ``seq`` order, as an Arrow IPC stream with zstd buffer
compression (~5 bytes a fill): readers always take whole months, so nothing is lost by not
indexing single fills. Arrow IPC rather than Parquet: it encodes and decodes faster, and with
delta-coded timestamps it came out smaller on a month of fills (5.2 against 5.5 bytes a fill).

Columns, chosen so that zstd finds the repetition:

* ``timestamp``: int64 microseconds since the epoch, UTC, *delta coded* (the first value is
  absolute, each next one the difference to the one before: fills minutes apart become small
  repeated numbers);
* ``side`` (0 BUY, 1 SELL) and ``action`` (0 OPEN, 1 CLOSE): int8;
* ``price``, ``size``, ``pnl``: float64, bit-exact (``pnl`` null where the table had NULL).

The encoding is named in each row (``ENCODING``), so a later format can be read beside this one.
A block that cannot be decoded, or holds another number of fills than its row says, raises
``ResultsDatabaseError`` naming the variant, epic and month, and the fix: materialize that
partition again (the write replaces the block).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc

from btpipeline.errors import ResultsDatabaseError

ENCODING = "arrow-ipc-zstd/1"
SIDES: tuple[str, ...] = ("BUY", "SELL")
ACTIONS: tuple[str, ...] = ("OPEN", "CLOSE")
_SCHEMA = pa.schema([("timestamp", pa.int64()), ("side", pa.int8()), ("action", pa.int8()),
                     ("price", pa.float64()), ("size", pa.float64()), ("pnl", pa.float64())])
_OPTIONS = ipc.IpcWriteOptions(compression="zstd")


@dataclasses.dataclass(frozen=True)
class FillColumns:
    """The fills of one or more blocks as arrays of equal length, in ``seq`` order.

    ``timestamp`` is ``datetime64[us]`` (UTC); ``side``/``action`` are int8 codes into
    ``SIDES``/``ACTIONS``; ``pnl`` holds NaN where the fill has none."""

    timestamp: np.ndarray
    side: np.ndarray
    action: np.ndarray
    price: np.ndarray
    size: np.ndarray
    pnl: np.ndarray

    def __len__(self) -> int:
        return int(self.timestamp.shape[0])

    def take(self, index: Any) -> FillColumns:
        return FillColumns(*(getattr(self, f.name)[index] for f in dataclasses.fields(self)))


def codes(values: pd.Series, names: tuple[str, ...], column: str) -> np.ndarray:
    """``values`` (already upper-case) as int8 codes into ``names``; an unknown value is refused
    naming its column and row."""
    out = np.full(len(values), -1, dtype=np.int8)
    for code, name in enumerate(names):
        out[(values == name).to_numpy(dtype=bool, na_value=False)] = code
    bad = np.flatnonzero(out < 0)
    if len(bad):
        raise ResultsDatabaseError(
            f"fills column {column!r} is {values.iloc[bad[0]]!r} at row {int(bad[0])} "
            f"({len(bad)} row(s) in all); it must be one of {list(names)}. Nothing was "
            "written. Fix: repair those rows before writing.")
    return out


def encode(fills: FillColumns) -> bytes:
    """One block's bytes (the fills in the order given)."""
    stamps = fills.timestamp.astype("datetime64[us]").astype(np.int64)
    deltas = np.diff(stamps, prepend=np.int64(0)) if len(stamps) else stamps
    pnl = np.asarray(fills.pnl, dtype=np.float64)
    table = pa.table([pa.array(deltas, pa.int64()), pa.array(fills.side, pa.int8()),
                      pa.array(fills.action, pa.int8()),
                      pa.array(np.asarray(fills.price, dtype=np.float64)),
                      pa.array(np.asarray(fills.size, dtype=np.float64)),
                      pa.array(pnl, mask=np.isnan(pnl))], schema=_SCHEMA)
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, _SCHEMA, options=_OPTIONS) as stream:
        stream.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def decode(data: bytes, *, encoding: str, fills: int, where: Mapping[str, str]) -> FillColumns:
    """The fills of one block; ``where`` (variant, epic, partition_key) names it in errors."""
    try:
        if encoding != ENCODING:
            raise ValueError(f"unknown encoding {encoding!r} (this version reads {ENCODING!r})")
        table = ipc.open_stream(pa.py_buffer(data)).read_all()
        if table.schema != _SCHEMA:
            raise ValueError(f"unexpected columns {table.schema.names}")
        if table.num_rows != fills:
            raise ValueError(f"it holds {table.num_rows} fills, its row says {fills}")
        column = {name: table.column(name) for name in _SCHEMA.names}
        stamps = np.cumsum(column["timestamp"].to_numpy()).astype("datetime64[us]")
        return FillColumns(
            timestamp=stamps, side=column["side"].to_numpy(), action=column["action"].to_numpy(),
            price=column["price"].to_numpy(), size=column["size"].to_numpy(),
            pnl=column["pnl"].to_numpy(zero_copy_only=False))
    except (pa.ArrowException, ValueError, OSError) as error:
        raise corrupt_block_error(where, error) from error


def corrupt_block_error(where: Mapping[str, str], error: BaseException) -> ResultsDatabaseError:
    variant, epic, key = where["variant"], where["epic"], where["partition_key"]
    return ResultsDatabaseError(
        f"The stored fills of {variant} {epic} for the month {key[:7]} cannot be read "
        f"({type(error).__name__}: {error}). Fix: materialize that partition again (it "
        f"replaces the block), e.g. `python3 -m dagster asset materialize -m "
        f"btpipeline.definitions --select 'backtest/{variant}/{epic}' --partition {key}`.")


def concat(parts: Sequence[FillColumns]) -> FillColumns:
    """Blocks one after another (an empty list gives empty columns)."""
    if not parts:
        empty = np.array([], dtype=np.float64)
        return FillColumns(np.array([], dtype="datetime64[us]"), np.array([], dtype=np.int8),
                           np.array([], dtype=np.int8), empty, empty, empty)
    return FillColumns(*(np.concatenate([getattr(p, f.name) for p in parts])
                         for f in dataclasses.fields(FillColumns)))
