"""Write sweeps and their per-combination results (see sweep_tables.py).

Every function runs inside the caller's transaction (``ResultsDatabase`` opens it), so a chunk's
rows are stored all together or not at all, and a retried chunk replaces exactly its own rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, delete, text, update

from btpipeline.results.rows import finite_or_none, json_params
from btpipeline.results.sweep_tables import SWEEP_METRIC_COLUMNS, sweep_results, sweeps


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def lock_sweep(conn: Connection, sweep_id: str) -> None:
    """Serialise writers of one sweep id until the transaction ends (PostgreSQL advisory lock;
    SQLite's ``BEGIN IMMEDIATE`` already lets one writer in at a time)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                     {"key": f"btpipeline/sweeps/{sweep_id}"})


def start_sweep(conn: Connection, row: Mapping[str, Any]) -> None:
    """Store ``row`` as the sweep (status RUNNING), replacing a sweep with the same id and
    deleting that sweep's results."""
    sweep_id = row["sweep_id"]
    lock_sweep(conn, sweep_id)
    conn.execute(delete(sweep_results).where(sweep_results.c.sweep_id == sweep_id))
    conn.execute(delete(sweeps).where(sweeps.c.sweep_id == sweep_id))
    conn.execute(sweeps.insert().values(
        **{**row, "costs": json_params(row["costs"]), "grid": json_params(row["grid"]),
           "status": "RUNNING", "error": None, "created_at": _now(), "finished_at": None}))


def result_values(sweep_id: str, chunk: int, run_id: str,
                  row: Mapping[str, Any]) -> dict[str, Any]:
    """A ``sweep_results`` row from a chunk's result row (see ``sweeps.spec.result_row``)."""
    return {
        "sweep_id": sweep_id, "combination": int(row["index"]),
        "combination_key": row["combination"], "chunk": chunk,
        "params": json_params(row["params"]),
        **{name: finite_or_none(row[name]) for name in SWEEP_METRIC_COLUMNS},
        "fills": int(row["fills"]), "compute_ms": float(row["compute_ms"]),
        "run_id": run_id, "written_at": _now(),
    }


def replace_chunk(conn: Connection, sweep_id: str, combinations: Sequence[int],
                  values: Sequence[Mapping[str, Any]]) -> None:
    """Delete the stored rows of ``combinations`` (an earlier attempt's) and insert
    ``values``: each combination is stored exactly once."""
    lock_sweep(conn, sweep_id)
    conn.execute(delete(sweep_results).where(sweep_results.c.sweep_id == sweep_id,
                                             sweep_results.c.combination.in_(combinations)))
    if values:
        conn.execute(sweep_results.insert(), [dict(v) for v in values])


def finish_sweep(conn: Connection, sweep_id: str, status: str, error: str | None) -> None:
    conn.execute(update(sweeps).where(sweeps.c.sweep_id == sweep_id).values(
        status=status, error=error, finished_at=_now()))


def end_sweeps_of_run(conn: Connection, run_id: str, status: str, error: str | None) -> int:
    """Mark the sweeps that run ``run_id`` left RUNNING as ``status``; how many there were."""
    done = conn.execute(update(sweeps).where(sweeps.c.run_id == run_id,
                                             sweeps.c.status == "RUNNING").values(
        status=status, error=error, finished_at=_now()))
    return int(done.rowcount or 0)
