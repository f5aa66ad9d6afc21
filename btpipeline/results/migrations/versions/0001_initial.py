"""The results schema as released before Alembic managed it (four backtest tables keyed by
strategy x epic): created where missing, so a database that ``create_tables`` made earlier is
adopted as it is.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from btpipeline.results.migrations.naming import NAMING

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.DateTime(timezone=True)
METRICS = ("total_return", "sharpe", "sortino", "max_drawdown", "win_rate", "profit_factor",
           "expectancy", "exposure", "pnl")
COUNTS = ("bars", "num_trades")


def _key() -> list[sa.Column[Any]]:
    return [sa.Column("strategy", sa.String(64), nullable=False),
            sa.Column("epic", sa.String(16), nullable=False)]


def _run_columns() -> list[sa.Column[Any]]:
    return [sa.Column("partition_start", sa.String(32), nullable=False),
            sa.Column("partition_end", sa.String(32), nullable=False),
            sa.Column("run_id", sa.String(64), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("error", sa.Text, nullable=True),
            sa.Column("started_at", _TIME, nullable=False),
            sa.Column("finished_at", _TIME, nullable=False)]


def initial_metadata() -> sa.MetaData:
    """The four tables exactly as ``results/tables.py`` defined them at this revision."""
    metadata = sa.MetaData(naming_convention=NAMING)
    sa.Table(
        "backtest_executions", metadata,
        sa.Column("id", _ID, primary_key=True, autoincrement=True), *_key(), *_run_columns(),
        sa.Column("duration_ms", sa.BigInteger, nullable=False),
        sa.Column("params", sa.JSON, nullable=True),
        *(sa.Column(name, sa.BigInteger, nullable=True) for name in COUNTS),
        *(sa.Column(name, sa.Double, nullable=True) for name in METRICS),
        sa.Column("written_at", _TIME, nullable=False),
        sa.UniqueConstraint("strategy", "epic", "partition_start", "partition_end"),
        sa.CheckConstraint("status IN ('SUCCESS', 'FAILED')", name="status"))
    attempts = sa.Table(
        "backtest_execution_attempts", metadata,
        sa.Column("id", _ID, primary_key=True, autoincrement=True), *_key(), *_run_columns(),
        sa.Column("written_at", _TIME, nullable=False),
        sa.CheckConstraint("status IN ('SUCCESS', 'FAILED')", name="status"))
    sa.Index(None, attempts.c.strategy, attempts.c.epic, attempts.c.partition_start)
    sa.Table(
        "backtest_signals", metadata,
        sa.Column("id", _ID, primary_key=True, autoincrement=True), *_key(),
        sa.Column("partition_key", sa.String(32), nullable=False),
        sa.Column("timestamp", _TIME, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("action", sa.String(5), nullable=False),
        sa.Column("price", sa.Double, nullable=False),
        sa.Column("size", sa.Double, nullable=False),
        sa.Column("pnl", sa.Double, nullable=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.UniqueConstraint("strategy", "epic", "partition_key", "seq"),
        sa.CheckConstraint("side IN ('BUY', 'SELL')", name="side"),
        sa.CheckConstraint("action IN ('OPEN', 'CLOSE')", name="action"))
    daily = sa.Table(
        "backtest_daily_pnl", metadata, *_key(),
        sa.Column("partition_key", sa.String(32), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("pnl", sa.Double, nullable=False),
        sa.Column("bars", sa.Integer, nullable=False),
        sa.Column("bars_in_market", sa.Integer, nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("strategy", "epic", "day"))
    sa.Index(None, daily.c.strategy, daily.c.epic, daily.c.partition_key)
    return metadata


def upgrade() -> None:
    """Create each table (with its indexes) unless it exists (the bind's schema_translate_map
    puts them in the configured schema)."""
    initial_metadata().create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    raise NotImplementedError("The results schema is not downgraded: restore a backup instead.")
