"""Where the live scanner writes its signals: the ``live_signals`` table, with SQLAlchemy only.

The scanner is the process everything else protects, so it must not load Dagster (hundreds of
modules and tens of MB): this sink is what it writes through. ``ResultsDatabase`` (the Dagster
resource) delegates its own ``write_live_signals`` here, so both write the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine

from btpipeline.results import writer
from btpipeline.results.engine import build_engine, connect, create_tables, normalize_url, redact
from btpipeline.results.retry import retrying
from btpipeline.results.tables import live_signals


class LiveSignalSink:
    """Writes one tick's live-signal rows per call, in one transaction, idempotently.

    ``retry_seconds``: how long a call is retried through transient faults (the scanner uses
    0: a tick must not wait out an outage; it writes the change on a later tick). ``engine``:
    an engine to share (the resource's), else one is built from ``url`` on first use.
    """

    def __init__(self, url: str, *, db_schema: str | None = None, retry_seconds: float = 0.0,
                 engine: Engine | None = None) -> None:
        self.url, self.db_schema, self.retry_seconds = url, db_schema, retry_seconds
        self._engine, self._owns_engine, self._ready = engine, engine is None, False

    @property
    def safe_url(self) -> str:
        """The URL with its password hidden, for logs and messages."""
        return redact(self.url)

    def _ready_engine(self) -> Engine:
        if self._engine is None:
            self._engine = build_engine(normalize_url(self.url), self.db_schema)
        engine = self._engine
        if not self._ready:
            retrying(lambda: create_tables(engine, self.db_schema, [live_signals]),
                     budget_s=self.retry_seconds, action="create the live tables")
            self._ready = True
        return engine

    def write_live_signals(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert the rows (columns: ``writer.LIVE_SIGNAL_COLUMNS``); a row whose
        (epic, strategy, bar_timestamp) is stored already is skipped. Returns rows inserted.
        The first call creates ``live_signals`` (an empty ``rows`` only does that, which also
        checks the connection)."""
        engine = self._ready_engine()
        if not rows:
            return 0

        def attempt() -> int:
            with connect(engine, "write live signals", write=True) as conn:
                return writer.write_live_signals(conn, rows)

        return retrying(attempt, budget_s=self.retry_seconds, action="write live signals")

    def dispose(self) -> None:
        """Close the pooled connections of an engine this sink built (the next call
        reconnects)."""
        if self._engine is not None and self._owns_engine:
            self._engine.dispose()
            self._engine = None
        self._ready = False
