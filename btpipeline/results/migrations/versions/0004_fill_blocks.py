"""Fills as one compressed block per (variant, epic, month): ``backtest_fill_blocks`` replaces
``backtest_signals`` (one row per fill; see ``results/tables.py`` for why).

Every stored month's rows are read in ``seq`` order, encoded (``results/fill_blocks.py``) and
written as one block with the month's strategy, params_hash and run_id; then
``backtest_signals`` is dropped. Readers give back the same rows (``read_signals``);
``btpipeline results export-signals`` rebuilds the table from the blocks when SQL needs it.
On PostgreSQL the block column is stored EXTERNAL: it is compressed already, so TOAST's own
compression would only spend time.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from alembic import op

from btpipeline.results.fill_blocks import ACTIONS, ENCODING, SIDES, FillColumns, codes, encode
from btpipeline.results.migrations.naming import NAMING, revision_schema

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SIGNALS, BLOCKS = "backtest_signals", "backtest_fill_blocks"
_KEY = ("strategy", "epic", "variant", "params_hash", "partition_key", "run_id")


def _blocks_table(metadata: sa.MetaData, schema: str | None) -> sa.Table:
    """``backtest_fill_blocks`` as this revision made it (frozen here)."""
    stamp = sa.DateTime(timezone=True)
    return sa.Table(
        BLOCKS, metadata,
        sa.Column("strategy", sa.String(64), nullable=False),
        sa.Column("epic", sa.String(16), nullable=False),
        sa.Column("variant", sa.String(64), nullable=False),
        sa.Column("params_hash", sa.String(16), nullable=True),
        sa.Column("partition_key", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("fills", sa.Integer, nullable=False),
        sa.Column("first_timestamp", stamp, nullable=False),
        sa.Column("last_timestamp", stamp, nullable=False),
        sa.Column("encoding", sa.String(32), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("variant", "epic", "partition_key"),
        sa.CheckConstraint("fills > 0", name="fills"),
        schema=schema)


def upgrade() -> None:
    schema, bind = revision_schema(), op.get_bind()
    blocks = _blocks_table(sa.MetaData(naming_convention=NAMING), schema)
    blocks.create(bind, checkfirst=True)
    if bind.dialect.name == "postgresql":
        op.execute(sa.text(f"ALTER TABLE {_qualified(bind, schema)} "
                           "ALTER COLUMN data SET STORAGE EXTERNAL"))
    if not sa.inspect(bind).has_table(SIGNALS, schema=schema):
        return
    signals = sa.Table(SIGNALS, sa.MetaData(), autoload_with=bind, schema=schema)
    months = bind.execute(sa.select(signals.c.variant, signals.c.epic, signals.c.partition_key)
                          .distinct()).all()
    for variant, epic, key in months:
        rows = bind.execute(sa.select(signals).where(
            signals.c.variant == variant, signals.c.epic == epic,
            signals.c.partition_key == key).order_by(signals.c.seq)).mappings().all()
        bind.execute(blocks.insert().values(**_block(rows)))
    op.drop_table(SIGNALS, schema=schema)


def _qualified(bind: sa.Connection, schema: str | None) -> str:
    quote = bind.dialect.identifier_preparer
    return f"{quote.quote_schema(schema)}.{quote.quote(BLOCKS)}" if schema else quote.quote(BLOCKS)


def _block(rows: Sequence[Any]) -> dict[str, Any]:
    """One month's signal rows (in seq order) as a block row."""
    frame = pd.DataFrame(rows)
    stamps = pd.to_datetime(frame["timestamp"], utc=True).dt.tz_localize(None)
    fills = FillColumns(
        timestamp=stamps.to_numpy(dtype="datetime64[us]"),
        side=codes(frame["side"], SIDES, "side"),
        action=codes(frame["action"], ACTIONS, "action"),
        price=frame["price"].astype(float).to_numpy(),
        size=frame["size"].astype(float).to_numpy(),
        pnl=pd.to_numeric(frame["pnl"], errors="coerce").astype(float).to_numpy())
    first = {name: rows[0][name] for name in _KEY}
    return {**first, "fills": len(rows), "encoding": ENCODING, "data": encode(fills),
            "first_timestamp": _utc(fills.timestamp.min()),
            "last_timestamp": _utc(fills.timestamp.max())}


def _utc(stamp: np.datetime64) -> dt.datetime:
    """Naive UTC for SQLite (as the tables' UtcDateTime stores it), aware for PostgreSQL."""
    micros = int(stamp.astype("datetime64[us]").astype(np.int64))
    value = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=micros)
    if op.get_bind().dialect.name == "sqlite":
        return value
    return value.replace(tzinfo=dt.timezone.utc)


def downgrade() -> None:
    raise NotImplementedError("The results schema is not downgraded: restore a backup instead.")
