"""The results database's tables (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Four tables, all keyed by ``(variant, epic)`` (the universe file's variant: two variants of
one strategy never overwrite each other) and by Dagster's monthly partition keys
(``YYYY-MM-01`` strings). Every row also carries ``strategy`` (the strategy's name) and
``params_hash`` (``results/hashing.settings_hash`` of the execution's ``params`` JSON: the
strategy's parameters, timeframe, costs and account; NULL where unknown, e.g. a failed run).

The schema is managed by Alembic (``btpipeline/results/migrations/``): ``ResultsDatabase``
upgrades a database to the head revision when it opens it. A change here needs a revision.

* ``backtest_executions``: one row per executed partition *range*; unique on
  ``(variant, epic, partition_start, partition_end)``, so re-running a range replaces its row.
  A failed run never replaces a SUCCESS row (the last good result stays); a successful run
  removes the rows of other ranges that overlap its own (their metrics describe replaced data).
* ``backtest_execution_attempts``: the status history, one row per attempt (SUCCESS or FAILED,
  with its error), oldest first.
* ``backtest_fill_blocks``: the fills, one row per (variant, epic, month) holding that month's
  fills as one compressed columnar block (``results/fill_blocks.py``: Arrow IPC, zstd,
  delta-coded timestamps), plus their count, first and last time and the run that wrote them.
  Readers decode the blocks into the seed's ``backtest_signals`` rows (``read_signals``: one
  row per fill, ``seq`` numbering each month's fills); ``btpipeline results export-signals``
  writes those rows as a real ``backtest_signals`` table (or CSV) for SQL.
* ``backtest_daily_pnl``: one row per day; primary key ``(variant, epic, day)``.

And one table the live scanner (``btpipeline scanner``) writes:

* ``live_signals``: a row each time the latest target position of an (epic, strategy) changes
  (and one per pair when a scanner starts); unique on ``(epic, strategy, bar_timestamp)``, so
  writing the same bar's signal again is a no-op. It has its own ``live_metadata`` and is
  created on the first live-signal read or write.

Why blocks, not a row per fill: fills are written and read a whole month at a time (a run
replaces its months; reports and tests read variants, epics or months, never one fill), so a
row per fill, with its repeated keys and its B-tree entry, bought nothing and cost ~200 bytes
a fill in SQLite (four years of the 24 built-in assets: 544 MB) and 4x longer to write than
the backtest took to compute. A block is ~5 bytes a fill and one INSERT per month (the whole
database ~10 bytes a fill, written in a third of the compute time: "Results storage" in
``benchmarks/universe_scale.md``). It lives in the same database, written in the same
transaction as the execution row, so writes stay atomic and idempotent on SQLite and
PostgreSQL alike, and Celery workers on other machines need nothing but the database (no
shared filesystem, as Parquet files beside it would need, nor a second commit to keep in step
with the SQL one).

Non-finite metrics: a float metric that is ``inf``, ``-inf`` or ``NaN`` (``profit_factor`` with no
losing trade, ``sharpe`` of a flat equity curve) is stored as **NULL** and read back as ``NaN``.
JSON and the two databases disagree on infinities, NULL means the same everywhere.

The tables carry no schema: a PostgreSQL schema is applied per engine with
``schema_translate_map`` (see ``ResultsDatabase.db_schema``), so one ``MetaData`` serves every
schema.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Double,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

# Autoincrementing 64-bit ids; SQLite only autoincrements an INTEGER primary key.
_Id = BigInteger().with_variant(Integer(), "sqlite")

METRIC_COLUMNS: tuple[str, ...] = (
    "total_return", "sharpe", "sortino", "max_drawdown", "win_rate", "profit_factor",
    "expectancy", "exposure", "pnl",
)
COUNT_COLUMNS: tuple[str, ...] = ("bars", "num_trades")


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so values are stored as naive
    UTC and UTC is re-attached on read. Naive datetimes are refused when binding.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"timestamp {value!r} has no time zone; pass a UTC-aware datetime")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


def _key_columns() -> list[Column[Any]]:
    return [Column("strategy", String(64), nullable=False),
            Column("epic", String(16), nullable=False),
            Column("variant", String(64), nullable=False),
            Column("params_hash", String(16), nullable=True)]


def _run_columns() -> list[Column[Any]]:
    """What an execution row and an attempt row both record of one run over a range."""
    return [Column("partition_start", String(32), nullable=False),
            Column("partition_end", String(32), nullable=False),
            Column("run_id", String(64), nullable=False),
            Column("status", String(16), nullable=False),
            Column("error", Text, nullable=True),
            Column("started_at", UtcDateTime, nullable=False),
            Column("finished_at", UtcDateTime, nullable=False)]


executions = Table(
    "backtest_executions", metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    *_key_columns(),
    *_run_columns(),
    Column("duration_ms", BigInteger, nullable=False),
    Column("params", JSON, nullable=True),
    *(Column(name, BigInteger, nullable=True) for name in COUNT_COLUMNS),
    *(Column(name, Double, nullable=True) for name in METRIC_COLUMNS),
    Column("written_at", UtcDateTime, nullable=False),
    UniqueConstraint("variant", "epic", "partition_start", "partition_end"),
    CheckConstraint("status IN ('SUCCESS', 'FAILED')", name="status"),
)

execution_attempts = Table(
    "backtest_execution_attempts", metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    *_key_columns(),
    *_run_columns(),
    Column("written_at", UtcDateTime, nullable=False),
    CheckConstraint("status IN ('SUCCESS', 'FAILED')", name="status"),
)
Index(None, execution_attempts.c.variant, execution_attempts.c.epic,
      execution_attempts.c.partition_start)

fill_blocks = Table(
    "backtest_fill_blocks", metadata,
    *_key_columns(),
    Column("partition_key", String(32), nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("fills", Integer, nullable=False),
    Column("first_timestamp", UtcDateTime, nullable=False),
    Column("last_timestamp", UtcDateTime, nullable=False),
    Column("encoding", String(32), nullable=False),
    Column("data", LargeBinary, nullable=False),
    PrimaryKeyConstraint("variant", "epic", "partition_key"),
    CheckConstraint("fills > 0", name="fills"),
)

daily_pnl = Table(
    "backtest_daily_pnl", metadata,
    *_key_columns(),
    Column("partition_key", String(32), nullable=False),
    Column("day", String(10), nullable=False),
    Column("pnl", Double, nullable=False),
    Column("bars", Integer, nullable=False),
    Column("bars_in_market", Integer, nullable=False),
    Column("run_id", String(64), nullable=False),
    PrimaryKeyConstraint("variant", "epic", "day"),
)
Index(None, daily_pnl.c.variant, daily_pnl.c.epic, daily_pnl.c.partition_key)

live_metadata = MetaData(naming_convention=NAMING)
"""The live scanner's tables: created on the first live-signal call, not with the backtest
tables (a results DB that never sees a scanner keeps exactly the three tables above)."""

live_signals = Table(
    "live_signals", live_metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("scanned_at", UtcDateTime, nullable=False),
    Column("epic", String(16), nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("bar_timestamp", UtcDateTime, nullable=False),
    Column("position", SmallInteger, nullable=False),
    Column("previous", SmallInteger, nullable=True),
    Column("side", String(4), nullable=False),
    Column("price", Double, nullable=False),
    Column("latency_us", BigInteger, nullable=False),
    Column("tick", BigInteger, nullable=False),
    UniqueConstraint("epic", "strategy", "bar_timestamp"),
    CheckConstraint("position IN (-1, 0, 1)", name="position"),
    CheckConstraint("side IN ('BUY', 'SELL', 'FLAT')", name="side"),
)

TABLES: tuple[Table, ...] = (executions, fill_blocks, daily_pnl)
"""The backtest tables of one variant x epic x month."""

SIGNALS_TABLE = "backtest_signals"
"""The seed's one-row-per-fill table: no longer stored, rebuilt from the blocks on demand by
``btpipeline results export-signals`` (``results/export.py``); ``count_rows`` reports the
stored fills under this name."""
