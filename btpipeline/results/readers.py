"""Read the results tables back as pandas DataFrames (UTC-aware timestamps, NaN for NULL)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Select, Table, func, select

from btpipeline.results.tables import (
    TABLES,
    daily_pnl,
    execution_attempts,
    executions,
    live_signals,
    signals,
)

_TIME_COLUMNS = ("timestamp", "started_at", "finished_at", "written_at", "scanned_at",
                 "bar_timestamp")
_FLOAT_COLUMNS = ("price", "size", "pnl", "total_return", "sharpe", "sortino", "max_drawdown",
                  "win_rate", "profit_factor", "expectancy", "exposure")


def _frame(conn: Connection, query: Select) -> pd.DataFrame:
    result = conn.execute(query)
    frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    for column in frame.columns:
        if column in _TIME_COLUMNS:
            frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[ns, UTC]")
        elif column in _FLOAT_COLUMNS:
            frame[column] = frame[column].astype(float)
    return frame


def _where_key(query: Select, table: Table, strategy: str | None, epic: str | None,
               variant: str | None = None) -> Select:
    if variant is not None:
        query = query.where(table.c.variant == variant)
    if strategy is not None:
        query = query.where(table.c.strategy == strategy)
    if epic is not None:
        query = query.where(table.c.epic == epic)
    return query


def _day(value: str | dt.date) -> str:
    return value.isoformat()[:10] if isinstance(value, dt.date) else str(value)[:10]


def read_daily_pnl(conn: Connection, strategy: str | None, epic: str | None,
                   start_day: str | dt.date | None, end_day: str | dt.date | None,
                   variant: str | None = None) -> pd.DataFrame:
    """Columns: strategy, epic, variant, params_hash, partition_key, day (str), pnl, bars,
    bars_in_market, run_id."""
    query = _where_key(select(daily_pnl), daily_pnl, strategy, epic, variant)
    if start_day is not None:
        query = query.where(daily_pnl.c.day >= _day(start_day))
    if end_day is not None:
        query = query.where(daily_pnl.c.day <= _day(end_day))
    return _frame(conn, query.order_by(daily_pnl.c.epic, daily_pnl.c.day))


def read_signals(conn: Connection, strategy: str | None, epic: str | None,
                 partition_keys: Sequence[str] | None, variant: str | None = None
                 ) -> pd.DataFrame:
    """Every signals column, ordered by epic, partition_key, seq."""
    query = _where_key(select(signals), signals, strategy, epic, variant)
    if partition_keys is not None:
        query = query.where(signals.c.partition_key.in_([str(k) for k in partition_keys]))
    order = (signals.c.epic, signals.c.partition_key, signals.c.seq)
    return _frame(conn, query.order_by(*order))


def read_closed_trade_pnls(conn: Connection, strategy: str | None, epic: str,
                           variant: str | None = None) -> pd.Series:
    """P&L of each CLOSE fill in time order, as a float Series named ``pnl``."""
    query = _where_key(select(signals.c.pnl), signals, strategy, epic, variant)
    query = (query.where(signals.c.action == "CLOSE")
             .order_by(signals.c.partition_key, signals.c.seq))
    values = [np.nan if v is None else v for v in conn.execute(query).scalars()]
    return pd.Series(values, dtype=float, name="pnl")


def read_executions(conn: Connection, strategy: str | None, epic: str | None,
                    variant: str | None = None) -> pd.DataFrame:
    """Every executions column (non-finite metrics come back NaN), oldest range first."""
    query = _where_key(select(executions), executions, strategy, epic, variant)
    order = (executions.c.variant, executions.c.epic, executions.c.partition_start,
             executions.c.partition_end)
    return _frame(conn, query.order_by(*order))


def read_execution_attempts(conn: Connection, strategy: str | None, epic: str | None,
                            variant: str | None = None) -> pd.DataFrame:
    """The status history: one row per attempt (SUCCESS or FAILED with its error), in the
    order they were written."""
    query = _where_key(select(execution_attempts), execution_attempts, strategy, epic, variant)
    return _frame(conn, query.order_by(execution_attempts.c.id))


def count_rows(conn: Connection) -> dict[str, int]:
    return {table.name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for table in TABLES}


def read_live_signals(conn: Connection, epic: str | None, strategy: str | None,
                      since: dt.datetime | None) -> pd.DataFrame:
    """Every live_signals column (``scanned_at``/``bar_timestamp`` UTC), by bar time, epic,
    strategy; only rows with ``scanned_at >= since`` when given."""
    query = _where_key(select(live_signals), live_signals, strategy, epic)
    if since is not None:
        query = query.where(live_signals.c.scanned_at >= since)
    order = (live_signals.c.bar_timestamp, live_signals.c.epic, live_signals.c.strategy)
    return _frame(conn, query.order_by(*order))
