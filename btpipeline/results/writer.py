"""Write a backtest's results in one transaction: lock, delete its partitions, upsert, insert.

The functions take an open ``Connection`` inside a transaction; the caller owns commit and
rollback (``ResultsDatabase.write_backtest`` uses ``engine.begin()``).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import Connection, Table, and_, delete, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from btpipeline.results.rows import RowBatch
from btpipeline.results.tables import (
    COUNT_COLUMNS,
    METRIC_COLUMNS,
    daily_pnl,
    execution_attempts,
    executions,
    fill_blocks,
    live_signals,
)

_EXECUTION_KEY = ("variant", "epic", "partition_start", "partition_end")
_LIVE_SIGNAL_KEY = ("epic", "strategy", "bar_timestamp")
LIVE_SIGNAL_COLUMNS: tuple[str, ...] = ("scanned_at", "epic", "strategy", "bar_timestamp",
                                        "position", "previous", "side", "price", "latency_us",
                                        "tick")


def clear_partitions(conn: Connection, variant: str, epic: str, keys: Sequence[str]) -> None:
    """Delete the fill blocks and daily rows of ``keys`` (executions are upserted instead)."""
    for table in (fill_blocks, daily_pnl):
        conn.execute(delete(table).where(table.c.variant == variant, table.c.epic == epic,
                                         table.c.partition_key.in_(list(keys))))


def stage_rows(conn: Connection, daily: RowBatch) -> None:
    """SQLite, before the write lock: copy the daily rows into this connection's private TEMP
    table (Python-to-C binding is the slow part of a bulk insert), so that the locked
    transaction only moves them with ``INSERT ... SELECT`` (``insert_rows``): with several
    workers writing at once, SQLite's single write lock is what they queue for. Writing TEMP
    tables takes no lock on the database file. An earlier stage table of this connection is
    dropped first. (Fills need no staging: a month is one block row, encoded before.)"""
    name = _stage_name(daily_pnl)
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    if not len(daily):
        return
    columns = ", ".join(_quote(conn, c) for c in daily.names)
    conn.exec_driver_sql(f"CREATE TABLE {name} AS SELECT {columns} "
                         f"FROM main.{_quote(conn, daily_pnl.name)} WHERE 0")
    _executemany_rows(conn, name, daily)


def insert_rows(conn: Connection, blocks: Sequence[Mapping[str, Any]], daily: RowBatch
                ) -> None:
    """The fill blocks (one executemany: a row per month), then the daily rows in bulk from
    columns, with no per-row Python objects on the way: ``COPY`` of an Arrow-written CSV buffer
    on PostgreSQL; on SQLite ``INSERT ... SELECT`` from the table ``stage_rows`` filled before
    the transaction took the write lock."""
    if blocks:
        conn.execute(fill_blocks.insert(), list(blocks))
    if not len(daily):
        return
    if conn.dialect.name == "postgresql":
        _copy_rows(conn, daily_pnl, daily)
        return
    name, columns = _stage_name(daily_pnl), ", ".join(_quote(conn, c) for c in daily.names)
    conn.exec_driver_sql(f"INSERT INTO main.{_quote(conn, daily_pnl.name)} ({columns}) "
                         f"SELECT {columns} FROM {name}")
    conn.exec_driver_sql(f"DROP TABLE {name}")


def _stage_name(table: Table) -> str:
    return f"temp.btpipeline_stage_{table.name}"


def _quote(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


@contextmanager
def _raw_cursor(conn: Connection, statement: str) -> Iterator[Any]:
    """The DB-API cursor of ``conn``'s open transaction; driver errors are wrapped as
    SQLAlchemy would wrap them (``DBAPIError``), naming ``statement``."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        yield cursor
    except conn.dialect.loaded_dbapi.Error as error:
        raise DBAPIError.instance(statement, None, error, conn.dialect.loaded_dbapi.Error
                                  ) from error
    finally:
        cursor.close()


def _sqlite_values(values: Any) -> list[Any]:
    """One column as the sqlite3 driver binds it: timestamps as SQLAlchemy writes them
    (``YYYY-MM-DD HH:MM:SS.ffffff``, naive UTC), NaN as NULL."""
    array = np.asarray(values)
    if array.dtype.kind == "M":
        text = np.datetime_as_string(array.astype("datetime64[us]"), unit="us")
        return np.char.replace(text, "T", " ").tolist()
    if array.dtype.kind == "f":
        missing = np.isnan(array)
        if missing.any():
            array = array.astype(object)
            array[missing] = None
    return array.tolist()


def _executemany_rows(conn: Connection, target: str, batch: RowBatch) -> None:
    """One ``INSERT`` into ``target`` per row, by the driver's executemany over zipped
    column lists (SQLite)."""
    names = batch.names
    statement = (f"INSERT INTO {target} ({', '.join(_quote(conn, c) for c in names)}) "
                 f"VALUES ({', '.join('?' for _ in names)})")
    count = len(batch)
    columns = [*(itertools.repeat(value, count) for value in batch.constants.values()),
               *(_sqlite_values(values) for values in batch.columns.values())]
    with _raw_cursor(conn, statement) as cursor:
        cursor.executemany(statement, zip(*columns, strict=True))


def _arrow_column(values: Any) -> pa.Array:
    array = np.asarray(values)
    if array.dtype.kind == "M":  # timestamptz: written with a "Z", read by COPY as UTC
        return pa.array(array.astype("datetime64[us]")).cast(pa.timestamp("us", tz="UTC"))
    if array.dtype.kind == "O":
        return pa.array(array, type=pa.string())
    return pa.array(array, from_pandas=True)  # NaN -> null


def _csv_buffer(batch: RowBatch) -> bytes:
    """The batch as headerless CSV (nulls unquoted and empty, strings quoted), by Arrow's C++
    writer."""
    count = len(batch)
    constants = {name: np.full(count, value, dtype=object)
                 for name, value in batch.constants.items()}
    table = pa.table({name: _arrow_column(values)
                      for name, values in {**constants, **batch.columns}.items()})
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False))
    return sink.getvalue().to_pybytes()


def _copy_rows(conn: Connection, table: Table, batch: RowBatch) -> None:
    """``COPY ... FROM STDIN (FORMAT csv)`` on the connection's own transaction (psycopg 3)."""
    schema = (conn.get_execution_options().get("schema_translate_map") or {}).get(None)
    name = _quote(conn, table.name)
    if schema:
        name = f"{conn.dialect.identifier_preparer.quote_schema(schema)}.{name}"
    statement = (f"COPY {name} ({', '.join(_quote(conn, c) for c in batch.names)}) "
                 "FROM STDIN WITH (FORMAT csv)")
    with _raw_cursor(conn, statement) as cursor, cursor.copy(statement) as copy:
        copy.write(_csv_buffer(batch))


def execution_row(*, strategy: str, epic: str, keys: Sequence[str], run_id: str, status: str,
                  started_at: dt.datetime, finished_at: dt.datetime, error: str | None = None,
                  params: Any = None, metrics: Mapping[str, Any] | None = None,
                  variant: str | None = None, params_hash: str | None = None
                  ) -> dict[str, Any]:
    """A complete ``backtest_executions`` row (every metric column set, NULL if absent)."""
    row: dict[str, Any] = {name: None for name in (*COUNT_COLUMNS, *METRIC_COLUMNS)}
    row.update(metrics or {})
    row.update(
        strategy=strategy, variant=variant or strategy, params_hash=params_hash, epic=epic,
        partition_start=keys[0], partition_end=keys[-1],
        run_id=run_id, status=status, error=error, started_at=started_at,
        finished_at=finished_at, params=params, written_at=dt.datetime.now(dt.timezone.utc),
        duration_ms=int((finished_at - started_at).total_seconds() * 1000),
    )
    return row


def lock_variant(conn: Connection, variant: str, epic: str) -> None:
    """Serialise writers of one variant x epic until this transaction ends (PostgreSQL
    advisory lock; SQLite's ``BEGIN IMMEDIATE`` already lets one writer in at a time). Two runs
    writing the same partitions then replace each other's rows in turn instead of colliding on
    the fill blocks' primary key."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                     {"key": f"btpipeline/results/{variant}/{epic}"})


def upsert_execution(conn: Connection, row: Mapping[str, Any], *,
                     keep_success: bool = False) -> None:
    """Insert the row, or replace every column of the row with the same range; with
    ``keep_success`` a stored SUCCESS row is left as it is (a failure never erases the last
    good result)."""
    statement = _dialect_insert(conn, executions).values(**row)
    update = {name: statement.excluded[name] for name in row if name not in _EXECUTION_KEY}
    where = executions.c.status != "SUCCESS" if keep_success else None
    conn.execute(statement.on_conflict_do_update(index_elements=list(_EXECUTION_KEY),
                                                 set_=update, where=where))


def remove_overlapping_executions(conn: Connection, variant: str, epic: str,
                                  keys: Sequence[str]) -> None:
    """Delete the execution rows of *other* ranges that overlap ``keys[0]..keys[-1]``: their
    metrics describe fills this write replaces."""
    first, last = keys[0], keys[-1]
    conn.execute(delete(executions).where(
        executions.c.variant == variant, executions.c.epic == epic,
        executions.c.partition_start <= last, executions.c.partition_end >= first,
        ~and_(executions.c.partition_start == first, executions.c.partition_end == last)))


def insert_attempt(conn: Connection, row: Mapping[str, Any]) -> None:
    """Append an execution row's status (and error) to the attempts history."""
    columns = {c.name for c in execution_attempts.columns} - {"id"}
    conn.execute(execution_attempts.insert().values(
        **{name: value for name, value in row.items() if name in columns}))


def _dialect_insert(conn: Connection, table: Table) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)



def write_live_signals(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert live-scanner signal rows (``LIVE_SIGNAL_COLUMNS``); a row whose
    (epic, strategy, bar_timestamp) is already stored is skipped. Returns the rows inserted."""
    if not rows:
        return 0
    values = [{column: row[column] for column in LIVE_SIGNAL_COLUMNS} for row in rows]
    insert = _dialect_insert(conn, live_signals)
    statement = insert.values(values).on_conflict_do_nothing(
        index_elements=list(_LIVE_SIGNAL_KEY)).returning(live_signals.c.id)
    return len(conn.execute(statement).fetchall())  # rowcount is unreliable for this on psycopg
