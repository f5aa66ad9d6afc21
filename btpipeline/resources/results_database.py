"""``ResultsDatabase``: the Dagster resource that stores backtest results (SQLite or PostgreSQL).

A backtest run writes one execution row plus the fills (one compressed block per month) and
daily P&L of each of its partitions in one transaction (``write_backtest``); re-running a
partition replaces its rows, keyed by the universe file's variant.
On first use the tables are created, or upgraded to the newest Alembic
revision (``btpipeline/results/migrate.py``). Table schemas and how non-finite metrics are stored:
``btpipeline/results/tables.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr
from sqlalchemy import Connection, Engine, text

from btpipeline import settings
from btpipeline.errors import ResultsDatabaseError
from btpipeline.results import export, migrate, readers, rows, sweep_readers, sweep_writer, writer
from btpipeline.results.engine import build_engine, connect, create_tables, normalize_url, redact
from btpipeline.results.hashing import settings_hash
from btpipeline.results.live_sink import LiveSignalSink
from btpipeline.results.retry import retrying
from btpipeline.results.sweep_tables import SWEEP_TABLES

T = TypeVar("T")


class ResultsDatabase(ConfigurableResource):
    """Backtest results (executions, signals, daily P&L) in SQLite or PostgreSQL."""

    url: str = Field(
        default_factory=settings.default_results_url,
        description="SQLAlchemy URL of the results database. Default: a SQLite file under "
        "BTPIPELINE_HOME (or BTPIPELINE_RESULTS_URL). PostgreSQL: postgresql://user:pw@host/db "
        "(driven by psycopg 3).",
    )
    db_schema: str | None = Field(
        default=None,
        description="PostgreSQL schema holding the tables (created if missing); unset uses the "
        "connection's default (public). Not supported on SQLite.",
    )
    retry_seconds: float = Field(
        default_factory=settings.default_results_retry_seconds,
        description="How long a call is retried (with backoff) through transient faults: "
        "connection lost, server restarting, lock timeout, deadlock. Default 90 s, or "
        "BTPIPELINE_RESULTS_RETRY_SECONDS. Bad input is never retried.",
    )
    _engine: Engine | None = PrivateAttr(default=None)
    _live: LiveSignalSink | None = PrivateAttr(default=None)
    _sweeps_ready: bool = PrivateAttr(default=False)

    # -- lifecycle -------------------------------------------------------------------------
    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._get_engine()

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        self.dispose()

    def dispose(self) -> None:
        """Close the pooled connections (the next call reconnects)."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        self._live = None
        self._sweeps_ready = False

    def _retrying(self, action: str, call: Callable[[], T]) -> T:
        return retrying(call, budget_s=self.retry_seconds, action=action)

    def _read(self, engine: Engine, action: str, read: Callable[[Connection], T]) -> T:
        def attempt() -> T:
            with connect(engine, action) as conn:
                return read(conn)

        return self._retrying(action, attempt)

    def _get_engine(self) -> Engine:
        if self._engine is None:
            self._retrying("create the tables", self._open_engine)
        assert self._engine is not None
        return self._engine

    def _open_engine(self) -> None:
        if self._engine is None:
            engine = build_engine(normalize_url(self.url), self.db_schema)
            try:
                migrate.upgrade(engine, self.db_schema)
            except ResultsDatabaseError:
                engine.dispose()
                raise
            self._engine = engine

    # -- schema and health -------------------------------------------------------------------
    def create_schema(self) -> None:
        """Create the PostgreSQL schema, tables and indexes if missing, and upgrade them to the
        newest revision (idempotent)."""
        engine = self._get_engine()
        self._retrying("upgrade the results schema",
                       lambda: migrate.upgrade(engine, self.db_schema))

    def ping(self) -> None:
        """Raise ``ResultsDatabaseError`` (URL shown without password) if unreachable."""
        engine = self._engine or build_engine(normalize_url(self.url), None)
        try:
            with connect(engine, "connect to it") as conn:
                conn.execute(text("SELECT 1"))
        finally:
            if engine is not self._engine:
                engine.dispose()

    @property
    def safe_url(self) -> str:
        """The URL with its password hidden, for logs and messages."""
        return redact(self.url)

    # -- writers -----------------------------------------------------------------------------
    def write_backtest(self, *, strategy: str, epic: str, partition_keys: Sequence[str],
                       run_id: str, params: Mapping[str, Any], started_at: dt.datetime,
                       finished_at: dt.datetime, metrics: Mapping[str, float],
                       fills: pd.DataFrame, daily: pd.DataFrame,
                       fence: Callable[[], None] | None = None,
                       variant: str | None = None) -> None:
        """Replace the results of ``partition_keys`` in one transaction.

        Deletes the fill blocks and daily rows of those partitions, upserts the execution row
        of the range (min key..max key) and inserts ``fills`` (timestamp, side, action, price,
        size, pnl, partition_key; ``seq`` numbers each partition's fills in the order given),
        one compressed block per partition (``backtest_fill_blocks``, see
        ``results/fill_blocks.py``), and ``daily`` (day, pnl, bars, bars_in_market,
        partition_key). Empty frames clear the partitions. Writers of the same strategy x epic
        take turns (a PostgreSQL advisory lock),
        execution rows of other ranges overlapping this one are removed, and the attempt is
        appended to ``backtest_execution_attempts``. ``fence`` runs inside the transaction
        just before it commits; raising there (``RunNotLiveError``) writes nothing. Transient
        faults are retried for ``retry_seconds``. Any failure rolls everything back and raises
        ``ResultsDatabaseError`` (``ResultsDatabaseUnavailableError`` if transient).

        Rows are keyed by ``variant`` (default: ``strategy``, one variant per strategy);
        ``strategy`` is the strategy's name. Every row carries ``params_hash``, the
        ``settings_hash`` of ``params`` as stored.
        """
        keys = rows.check_keys(partition_keys)
        variant = variant or strategy
        stored_params = rows.json_params(params)
        common = {"strategy": strategy, "epic": epic, "run_id": run_id, "variant": variant,
                  "params_hash": settings_hash(stored_params)}
        blocks = rows.fill_blocks(fills, keys, common)
        daily_rows = rows.daily_rows(daily, keys, common)
        execution = writer.execution_row(
            strategy=strategy, variant=variant, epic=epic, keys=keys, run_id=run_id,
            status="SUCCESS", started_at=rows.utc(started_at, "started_at"),
            finished_at=rows.utc(finished_at, "finished_at"), params=stored_params,
            params_hash=common["params_hash"],
            metrics=rows.metric_values(metrics, int(sum(daily_rows.columns.get("bars", [])))))
        action = f"write the {variant} {epic} results for {keys[0]}..{keys[-1]}"

        def attempt() -> None:
            with connect(self._get_engine(), action, write=True,
                         stage=lambda conn: writer.stage_rows(conn, daily_rows)
                         ) as conn:
                writer.lock_variant(conn, variant, epic)
                writer.clear_partitions(conn, variant, epic, keys)
                writer.remove_overlapping_executions(conn, variant, epic, keys)
                writer.upsert_execution(conn, execution)
                writer.insert_attempt(conn, execution)
                writer.insert_rows(conn, blocks, daily_rows)
                if fence is not None:
                    fence()

        self._retrying(action, attempt)

    def record_failure(self, *, strategy: str, epic: str, partition_keys: Sequence[str],
                       run_id: str, started_at: dt.datetime, finished_at: dt.datetime,
                       error: str, variant: str | None = None) -> None:
        """Append a FAILED attempt with ``error`` to the range's history; the range's execution
        row becomes FAILED only if it holds no SUCCESS (the last good result is kept). Its
        signals and daily rows are left as they were. Keyed by ``variant`` (default
        ``strategy``); its ``params_hash`` is NULL (the run did not get to its params)."""
        keys = rows.check_keys(partition_keys)
        variant = variant or strategy
        execution = writer.execution_row(
            strategy=strategy, variant=variant, epic=epic, keys=keys, run_id=run_id,
            status="FAILED",
            started_at=rows.utc(started_at, "started_at"),
            finished_at=rows.utc(finished_at, "finished_at"), error=str(error))
        action = f"record the failed {variant} {epic} run for {keys[0]}..{keys[-1]}"

        def attempt() -> None:
            with connect(self._get_engine(), action, write=True) as conn:
                writer.lock_variant(conn, variant, epic)
                writer.upsert_execution(conn, execution, keep_success=True)
                writer.insert_attempt(conn, execution)

        self._retrying(action, attempt)

    def write_live_signals(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """The live scanner's rows of one tick, through :class:`LiveSignalSink` on this
        resource's engine (see there: one transaction, idempotent, creates the table)."""
        if self._live is None:
            self._live = LiveSignalSink(self.url, db_schema=self.db_schema,
                                        retry_seconds=self.retry_seconds,
                                        engine=self._get_engine())
        return self._live.write_live_signals(rows)

    # -- readers -----------------------------------------------------------------------------
    def read_daily_pnl(self, *, strategy: str | None = None, epic: str | None = None,
                       start_day: str | dt.date | None = None,
                       end_day: str | dt.date | None = None,
                       variant: str | None = None) -> pd.DataFrame:
        """Daily P&L rows (day as 'YYYY-MM-DD', both bounds inclusive), by epic and day; of
        one ``variant`` (the universe file's name) and/or ``strategy`` (the strategy's)."""
        return self._read(self._get_engine(), "read daily P&L",
                          lambda conn: readers.read_daily_pnl(conn, strategy, epic, start_day,
                                                              end_day, variant))

    def read_signals(self, *, strategy: str | None = None, epic: str | None = None,
                     partition_keys: Sequence[str] | None = None,
                     variant: str | None = None) -> pd.DataFrame:
        """Fills (timestamp as datetime64[ns, UTC]) ordered by epic, partition_key, seq."""
        return self._read(self._get_engine(), "read signals",
                          lambda conn: readers.read_signals(conn, strategy, epic, partition_keys,
                                                            variant))

    def read_closed_trade_pnls(self, *, epic: str, strategy: str | None = None,
                               variant: str | None = None) -> pd.Series:
        """P&L of every CLOSE fill in time order (a float Series: ``list()`` gives the values)."""
        return self._read(self._get_engine(), "read closed trades",
                          lambda conn: readers.read_closed_trade_pnls(conn, strategy, epic,
                                                                      variant))

    def read_executions(self, *, strategy: str | None = None, epic: str | None = None,
                        variant: str | None = None) -> pd.DataFrame:
        """Execution rows (one per range run; FAILED ones carry ``error``)."""
        return self._read(self._get_engine(), "read executions",
                          lambda conn: readers.read_executions(conn, strategy, epic, variant))

    def read_live_signals(self, *, epic: str | None = None, strategy: str | None = None,
                          since: dt.datetime | None = None) -> pd.DataFrame:
        """The live scanner's signal rows, ordered by bar time, epic and strategy."""
        self.write_live_signals([])  # creates live_signals if this database has none yet
        return self._read(self._get_engine(), "read live signals",
                          lambda conn: readers.read_live_signals(conn, epic, strategy, since))

    def read_execution_attempts(self, *, strategy: str | None = None,
                                epic: str | None = None,
                                variant: str | None = None) -> pd.DataFrame:
        """Every attempt's status (SUCCESS, or FAILED with ``error``), oldest first."""
        return self._read(self._get_engine(), "read execution attempts",
                          lambda conn: readers.read_execution_attempts(conn, strategy, epic,
                                                                       variant))

    def count_rows(self) -> dict[str, int]:
        """Rows per table: backtest_executions, backtest_signals (the fills stored in the
        blocks, one per fill as the seed's table had), backtest_daily_pnl."""
        return self._read(self._get_engine(), "count rows",
                          lambda conn: readers.count_rows(conn))

    def export_signals(self, *, to_url: str | None = None, csv: Path | None = None,
                       variant: str | None = None, epic: str | None = None) -> int:
        """The seed's ``backtest_signals`` rows (one per fill) rebuilt from the fill blocks,
        into the table of that name at ``to_url`` (created if missing; the chosen rows replaced
        in one transaction, so it is idempotent) or into the CSV file ``csv``; of one
        ``variant`` and/or ``epic``, or all. Returns the rows written."""
        if (to_url is None) == (csv is None):
            raise ResultsDatabaseError(
                "export-signals needs exactly one destination. Fix: pass --to URL (a "
                "SQLAlchemy URL, e.g. sqlite:///signals.db) or --csv FILE.")
        action = f"export the fills of {export.describe(variant, epic)}"
        if csv is not None:
            return self._read(self._get_engine(), action,
                              lambda conn: export.export_to_csv(conn, csv, variant, epic))
        assert to_url is not None
        return self._read(self._get_engine(), action,
                          lambda conn: export.export_to_database(conn, to_url, variant, epic))

    # -- sweeps (tables: btpipeline/results/sweep_tables.py) ---------------------------------
    def _get_sweep_engine(self) -> Engine:
        """The engine, after making sure the sweep tables exist (once per object)."""
        engine = self._get_engine()
        if not self._sweeps_ready:
            self._retrying("create the sweep tables",
                           lambda: create_tables(engine, self.db_schema, list(SWEEP_TABLES)))
            self._sweeps_ready = True
        return engine

    def _write_sweep(self, action: str, write: Callable[[Connection], None]) -> None:
        engine = self._get_sweep_engine()

        def attempt() -> None:
            with connect(engine, action, write=True) as conn:
                write(conn)

        self._retrying(action, attempt)

    def start_sweep(self, *, sweep_id: str, strategy: str, epic: str, range_start: str,
                    range_end: str, costs: Mapping[str, Any], grid: Mapping[str, Any],
                    rules: Sequence[str], rank_by: str, combinations: int,
                    run_id: str) -> None:
        """Store the sweep as RUNNING; a sweep stored with the same id is replaced and its
        results deleted (one transaction)."""
        row = {"sweep_id": sweep_id, "strategy": strategy, "epic": epic,
               "range_start": range_start, "range_end": range_end, "costs": dict(costs),
               "grid": dict(grid), "rules": list(rules), "rank_by": rank_by,
               "combinations": int(combinations), "run_id": run_id}
        self._write_sweep(f"start sweep {sweep_id!r}",
                          lambda conn: sweep_writer.start_sweep(conn, row))

    def write_sweep_chunk(self, *, sweep_id: str, chunk: int, run_id: str,
                          rows: Sequence[Mapping[str, Any]]) -> None:
        """Store one chunk's rows (each with ``index``, ``combination``, ``params``, every
        metric, ``fills``, ``compute_ms``) in one transaction, replacing any rows of the same
        combinations (a retried chunk): each combination is stored exactly once."""
        values = [sweep_writer.result_values(sweep_id, chunk, run_id, row) for row in rows]
        combinations = [v["combination"] for v in values]
        self._write_sweep(f"write chunk {chunk} of sweep {sweep_id!r}",
                          lambda conn: sweep_writer.replace_chunk(conn, sweep_id, combinations,
                                                                  values))

    def finish_sweep(self, *, sweep_id: str, status: str, error: str | None = None) -> None:
        """Mark the sweep SUCCESS or FAILED."""
        self._write_sweep(f"finish sweep {sweep_id!r}",
                          lambda conn: sweep_writer.finish_sweep(conn, sweep_id, status, error))

    def end_sweeps_of_run(self, *, run_id: str, status: str, error: str | None = None) -> int:
        """Mark the sweeps run ``run_id`` left RUNNING (a run that failed or was stopped
        before its steps could say so) as ``status``; returns how many."""
        ended: list[int] = []
        self._write_sweep(f"end the sweeps of run {run_id!r}", lambda conn: ended.append(
            sweep_writer.end_sweeps_of_run(conn, run_id, status, error)))
        return ended[-1] if ended else 0

    def read_sweep(self, sweep_id: str) -> dict[str, Any] | None:
        """The sweep's row (strategy, epic, range, costs, grid, rules, status...), or None."""
        return self._read(self._get_sweep_engine(), "read a sweep",
                          lambda conn: sweep_readers.read_sweep(conn, sweep_id))

    def read_sweep_results(self, sweep_id: str) -> pd.DataFrame:
        """Every stored combination of the sweep, in grid order (NaN for NULL metrics)."""
        return self._read(self._get_sweep_engine(), "read sweep results",
                          lambda conn: sweep_readers.read_sweep_results(conn, sweep_id))

    def count_sweep_rows(self, sweep_id: str) -> dict[int, int]:
        """Stored rows per combination index of the sweep (1 each when exactly once)."""
        return self._read(self._get_sweep_engine(), "count sweep rows",
                          lambda conn: sweep_readers.count_sweep_rows(conn, sweep_id))
