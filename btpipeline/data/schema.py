"""The Arrow schema of stored candles and the conversions between it and ``Candles``.

Stored files hold ``timestamp`` as ``timestamp[ns, tz=UTC]`` (so any Arrow tool reads real
times) while ``Candles`` carries the same 8 bytes per bar as int64; the conversion is a
reinterpretation of the buffer, never a copy.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from btpipeline.data.candles import FIELDS, Candles

PRICE_FIELDS = ("open", "high", "low", "close")

CANDLE_SCHEMA = pa.schema(
    [pa.field("timestamp", pa.timestamp("ns", tz="UTC"), nullable=False)]
    + [pa.field(name, pa.float64()) for name in (*PRICE_FIELDS, "volume")]
)


def candles_to_table(candles: Candles) -> pa.Table:
    """One-chunk table of ``candles`` in ``CANDLE_SCHEMA`` (wraps the numpy buffers)."""
    timestamps = pa.array(np.ascontiguousarray(candles.timestamp, dtype=np.int64), pa.int64())
    columns = [timestamps.view(CANDLE_SCHEMA.field("timestamp").type)]
    columns += [pa.array(np.ascontiguousarray(getattr(candles, name), dtype=np.float64),
                         pa.float64()) for name in FIELDS[1:]]
    return pa.Table.from_arrays(columns, schema=CANDLE_SCHEMA)


def schema_problem(schema: pa.Schema) -> str | None:
    """Why ``schema`` is not ``CANDLE_SCHEMA`` (field names, types, nullability), or None."""
    if schema.equals(CANDLE_SCHEMA, check_metadata=False):
        return None
    expected = ", ".join(f"{f.name}: {f.type}" for f in CANDLE_SCHEMA)
    found = ", ".join(f"{f.name}: {f.type}{'' if f.nullable else ' not null'}" for f in schema)
    return f"expected columns [{expected}] (timestamp not null), found [{found}]"


def _column_view(column: pa.ChunkedArray, name: str) -> np.ndarray:
    """A read-only numpy view of ``column`` (a copy only when it spans several chunks)."""
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if name == "timestamp":
        array = array.view(pa.int64())
    return array.to_numpy(zero_copy_only=True)


def table_to_candles(table: pa.Table) -> Candles:
    """``Candles`` viewing the buffers of a ``CANDLE_SCHEMA`` table.

    Raises ``pyarrow.ArrowInvalid`` when a column holds nulls (a view cannot represent them).
    """
    return Candles(*(_column_view(table.column(name), name) for name in FIELDS))
