"""Engines for the results database: URL normalisation, connection errors, schema creation.

Every failure is raised as ``ResultsDatabaseError`` naming the URL with its password hidden.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import (
    URL,
    Connection,
    Engine,
    Table,
    create_engine,
    event,
    inspect,
    make_url,
    text,
)
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.schema import CreateIndex, CreateSchema, CreateTable

from btpipeline import settings
from btpipeline.errors import (
    BtPipelineError,
    ResultsDatabaseError,
    ResultsDatabaseUnavailableError,
    ResultsDiskFullError,
)
from btpipeline.folders import make_dirs
from btpipeline.machine.pause_points import critical_section
from btpipeline.results.faults import Fault, classify
from btpipeline.results.tables import metadata

_CREATE_LOCK_ID = 0x6274_7069_7065  # pg advisory lock serialising concurrent CREATEs ("btpipe")
_PASSWORD_IN_URL = re.compile(r"(://[^:/@]*:)[^@/]*@")
URL_FIX = ("Fix: pass a SQLAlchemy URL such as sqlite:////abs/path/results.db or "
           "postgresql://user:password@host:5432/dbname (ResultsDatabase.url or "
           "BTPIPELINE_RESULTS_URL).")


def redact(url: str | URL) -> str:
    """``url`` with its password replaced by ``***`` (works on unparseable strings too)."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    return _PASSWORD_IN_URL.sub(r"\1***@", url)


def normalize_url(url: str) -> URL:
    """Parse ``url``; ``postgresql://`` and ``postgres://`` use psycopg 3."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as error:
        raise ResultsDatabaseError(
            f"Results database URL {redact(url)!r} is not a valid SQLAlchemy URL ({error}). "
            f"{URL_FIX}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ResultsDatabaseError(
            f"Results database URL {redact(parsed)!r} uses {parsed.drivername!r}; only SQLite "
            f"and PostgreSQL (psycopg 3) are supported. {URL_FIX}")
    return parsed


def build_engine(url: URL, db_schema: str | None) -> Engine:
    """A pooled engine for ``url``; tables land in ``db_schema`` (PostgreSQL only) if given."""
    backend = url.get_backend_name()
    if db_schema and backend != "postgresql":
        raise ResultsDatabaseError(
            f"db_schema={db_schema!r} was given for {redact(url)!r}, but schemas are only "
            "supported on PostgreSQL. Fix: drop db_schema, or use a postgresql:// URL.")
    try:
        engine = create_engine(url, **_engine_options(url))
    except (ArgumentError, NoSuchModuleError, ImportError) as error:
        raise ResultsDatabaseError(
            f"Cannot create an engine for {redact(url)!r}: {error}. {URL_FIX}") from None
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
    if db_schema:
        engine = engine.execution_options(schema_translate_map={None: db_schema})
    return engine


def _engine_options(url: URL) -> dict[str, Any]:
    if url.get_backend_name() == "sqlite":
        _make_parent_dir(url)
        return {"connect_args": {"timeout": 60}}  # wait for other writers instead of failing
    connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": 10}
    return {"pool_pre_ping": True, "connect_args": connect_args}


def _make_parent_dir(url: URL) -> None:
    """Create the default folder (BTPIPELINE_HOME); any other folder must exist already, so
    a mistyped path fails instead of silently creating an empty database somewhere new."""
    database = url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    folder = Path(database).expanduser().parent
    if folder.is_dir():
        return
    if folder.resolve() == settings.btpipeline_home().resolve():
        make_dirs(folder)
        return
    raise ResultsDatabaseError(
        f"Results database {redact(url)!r}: the folder {folder} does not exist, so the SQLite "
        "file cannot be created there (a mistyped path would otherwise make an empty database "
        f"in a new folder). Fix: correct the path, or create the folder (mkdir -p {folder}).")


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cursor.close()


@contextmanager
def connect(engine: Engine, action: str, *, write: bool = False,
            stage: Callable[[Connection], None] | None = None) -> Iterator[Connection]:
    """A connection (in one transaction if ``write``); errors become ``ResultsDatabaseError``.

    ``stage`` (used by SQLite writes only) runs on the same connection and is committed
    *before* the write lock is taken: it may only write the connection's TEMP tables
    (``writer.stage_rows``).
    """
    try:
        guard = critical_section() if write else nullcontext()  # never paused holding a lock
        with guard, engine.begin() if write else engine.connect() as conn:
            if write and engine.dialect.name == "sqlite" and stage is not None:
                stage(conn)
                conn.connection.dbapi_connection.commit()  # type: ignore[union-attr]
            if write and engine.dialect.name == "sqlite":
                # Take the write lock now (waiting up to the busy timeout): a deferred
                # transaction that reads first (table checks, upserts) and then writes fails at
                # once with "database is locked" if another writer committed meanwhile.
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn
    except BtPipelineError:  # already says what went wrong (a fence, a wrapped error)
        raise
    except Exception as error:  # rolled back by engine.begin(); say what failed
        raise wrap_error(error, engine.url, action) from error


def wrap_error(error: Exception, url: URL, action: str) -> ResultsDatabaseError:
    """``error`` as the ``ResultsDatabaseError`` subclass of its kind, naming ``action``."""
    detail = (str(getattr(error, "orig", None) or error).strip().splitlines() or [""])[0]
    fault = classify(error)
    head = (f"Results database {redact(url)!r}: could not {action}: {type(error).__name__}: "
            f"{detail}. Nothing was changed.")
    if fault is Fault.TRANSIENT:
        return ResultsDatabaseUnavailableError(
            f"{head} The database is unavailable (transient: connection refused or lost, "
            "server restarting, or a lock timed out). Fix: check that the server is running "
            "and reachable and that the URL (host, port, database, user, password) is right.")
    if fault is Fault.DISK_FULL:
        return ResultsDiskFullError(
            f"{head} Fix: free space on the disk that holds the database (PostgreSQL's data "
            "directory, or the SQLite file's folder), then run again.")
    if fault is Fault.REFUSED:
        return ResultsDatabaseError(
            f"{head} Fix: the data broke a table constraint or the database refused the "
            "statement; correct the input named above and run again.")
    return ResultsDatabaseError(f"{head} Fix: see the error above; it is a bug if the inputs "
                                "were valid.")


def create_tables(engine: Engine, db_schema: str | None,
                  tables: Sequence[Table] | None = None) -> None:
    """Create the schema (PostgreSQL) and every missing table and index (of ``tables``, default
    the backtest tables); safe to repeat and to run from several processes at once.

    Existing objects are skipped *before* any DDL runs: ``CREATE INDEX IF NOT EXISTS`` would
    still lock its table and deadlock with concurrent writers.
    """
    with connect(engine, "create the tables", write=True) as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _CREATE_LOCK_ID})
            if db_schema and not inspect(conn).has_schema(db_schema):
                conn.execute(CreateSchema(db_schema, if_not_exists=True))
        for table in metadata.sorted_tables if tables is None else tables:
            _create_table(conn, table, db_schema)


def _create_table(conn: Connection, table: Table, db_schema: str | None) -> None:
    if not inspect(conn).has_table(table.name, schema=db_schema):
        conn.execute(CreateTable(table, if_not_exists=True))
    for index in sorted(table.indexes, key=lambda i: str(i.name)):
        if not inspect(conn).has_index(table.name, str(index.name), schema=db_schema):
            conn.execute(CreateIndex(index, if_not_exists=True))
