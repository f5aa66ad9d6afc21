"""``btpipeline results export-signals``: the seed's ``backtest_signals`` table, rebuilt from the
fill blocks, for SQL tools (or a CSV file).

The results database stores fills as one block per month (``tables.py`` says why); this writes
them out one row per fill, with the seed's columns, into a ``backtest_signals`` table of any
SQLAlchemy database (SQLite file, PostgreSQL, or the results database itself). Idempotent: the
rows of the chosen variants and epics are deleted and written again in one transaction, so
running it twice leaves the same table. One (variant, epic) is decoded at a time, so memory
stays at one asset's fills.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Connection,
    Double,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    delete,
    select,
)

from btpipeline.results.engine import build_engine, connect, normalize_url
from btpipeline.results.readers import SIGNAL_COLUMNS, decoded_blocks, signals_frame
from btpipeline.results.tables import NAMING, SIGNALS_TABLE, UtcDateTime, fill_blocks

export_metadata = MetaData(naming_convention=NAMING)
signals_table = Table(
    SIGNALS_TABLE, export_metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
           autoincrement=True),
    Column("strategy", String(64), nullable=False),
    Column("epic", String(16), nullable=False),
    Column("variant", String(64), nullable=False),
    Column("params_hash", String(16), nullable=True),
    Column("partition_key", String(32), nullable=False),
    Column("timestamp", UtcDateTime, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("side", String(4), nullable=False),
    Column("action", String(5), nullable=False),
    Column("price", Double, nullable=False),
    Column("size", Double, nullable=False),
    Column("pnl", Double, nullable=True),
    Column("run_id", String(64), nullable=False),
    UniqueConstraint("variant", "epic", "partition_key", "seq"),
    CheckConstraint("side IN ('BUY', 'SELL')", name="side"),
    CheckConstraint("action IN ('OPEN', 'CLOSE')", name="action"),
)
"""The seed's ``backtest_signals`` (one row per fill), as the export writes it."""


def _assets(conn: Connection, variant: str | None, epic: str | None
            ) -> list[tuple[str, str]]:
    query = select(fill_blocks.c.variant, fill_blocks.c.epic).distinct()
    if variant is not None:
        query = query.where(fill_blocks.c.variant == variant)
    if epic is not None:
        query = query.where(fill_blocks.c.epic == epic)
    return [(row[0], row[1]) for row in conn.execute(query.order_by(*query.selected_columns))]


def signal_frames(source: Connection, variant: str | None, epic: str | None
                  ) -> Iterator[pd.DataFrame]:
    """The seed's rows of each stored (variant, epic), one frame each."""
    for name, instrument in _assets(source, variant, epic):
        query = (select(fill_blocks).where(fill_blocks.c.variant == name,
                                           fill_blocks.c.epic == instrument)
                 .order_by(fill_blocks.c.partition_key))
        yield signals_frame(decoded_blocks(source, query))


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    columns = {name: frame[name].tolist() for name in SIGNAL_COLUMNS if name != "timestamp"}
    columns["timestamp"] = list(frame["timestamp"].dt.to_pydatetime())
    columns["pnl"] = [None if value != value else value for value in columns["pnl"]]  # NaN
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(),
                                                                     strict=True)]


def export_to_database(source: Connection, url: str, variant: str | None, epic: str | None
                       ) -> int:
    """Replace the chosen rows of ``backtest_signals`` at ``url`` (created if missing) in one
    transaction; returns the rows written."""
    engine = build_engine(normalize_url(url), None)
    written = 0
    try:
        with connect(engine, f"export the fills to {SIGNALS_TABLE}", write=True) as target:
            export_metadata.create_all(target, checkfirst=True)
            clear = delete(signals_table)
            if variant is not None:
                clear = clear.where(signals_table.c.variant == variant)
            if epic is not None:
                clear = clear.where(signals_table.c.epic == epic)
            target.execute(clear)
            for frame in signal_frames(source, variant, epic):
                if len(frame):
                    target.execute(signals_table.insert(), _records(frame))
                written += len(frame)
    finally:
        engine.dispose()
    return written


def export_to_csv(source: Connection, path: Path, variant: str | None, epic: str | None) -> int:
    """Write the chosen rows to ``path`` (replaced), with a header of the seed's columns;
    timestamps in ISO 8601 UTC, an empty ``pnl`` for NULL. Returns the rows written."""
    written = 0
    with path.open("w", newline="") as out:
        out.write(",".join(SIGNAL_COLUMNS) + "\n")
        for frame in signal_frames(source, variant, epic):
            frame.to_csv(out, header=False, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
            written += len(frame)
    return written


def describe(variant: str | None, epic: str | None) -> str:
    chosen: Sequence[str] = [part for part in (variant, epic) if part]
    return " ".join(chosen) if chosen else "every variant and epic"
