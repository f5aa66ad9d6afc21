"""Read sweeps and their results back (NaN for NULL metrics)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import Connection, func, select

from btpipeline.results.sweep_tables import SWEEP_METRIC_COLUMNS, sweep_results, sweeps


def read_sweep(conn: Connection, sweep_id: str) -> dict[str, Any] | None:
    """The ``sweeps`` row of ``sweep_id``, or None."""
    row = conn.execute(select(sweeps).where(sweeps.c.sweep_id == sweep_id)).mappings().first()
    return dict(row) if row is not None else None


def read_sweep_results(conn: Connection, sweep_id: str) -> pd.DataFrame:
    """Every stored combination of ``sweep_id`` in grid order."""
    result = conn.execute(select(sweep_results).where(sweep_results.c.sweep_id == sweep_id)
                          .order_by(sweep_results.c.combination))
    frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    for column in (*SWEEP_METRIC_COLUMNS, "compute_ms"):
        frame[column] = frame[column].astype(float)
    return frame


def count_sweep_rows(conn: Connection, sweep_id: str) -> dict[int, int]:
    """How many rows each combination of ``sweep_id`` has (exactly-once checks)."""
    query = (select(sweep_results.c.combination, func.count())
             .where(sweep_results.c.sweep_id == sweep_id)
             .group_by(sweep_results.c.combination))
    return {int(combination): int(count) for combination, count in conn.execute(query)}
