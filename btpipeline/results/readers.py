"""Read the results tables back as pandas DataFrames (UTC-aware timestamps, NaN for NULL)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Select, Table, func, select

from btpipeline.results import fill_blocks as fill_codec
from btpipeline.results.tables import (
    SIGNALS_TABLE,
    daily_pnl,
    execution_attempts,
    executions,
    fill_blocks,
    live_signals,
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


SIGNAL_COLUMNS: tuple[str, ...] = ("strategy", "epic", "variant", "params_hash",
                                   "partition_key", "timestamp", "seq", "side", "action",
                                   "price", "size", "pnl", "run_id")
"""The seed's ``backtest_signals`` columns (without its surrogate ``id``), in its order."""
_BLOCK_KEYS = ("strategy", "epic", "variant", "params_hash", "partition_key", "run_id")


def _blocks_query(strategy: str | None, epic: str | None,
                  partition_keys: Sequence[str] | None, variant: str | None) -> Select:
    query = _where_key(select(fill_blocks), fill_blocks, strategy, epic, variant)
    if partition_keys is not None:
        query = query.where(fill_blocks.c.partition_key.in_([str(k) for k in partition_keys]))
    return query.order_by(fill_blocks.c.epic, fill_blocks.c.partition_key,
                          fill_blocks.c.variant)


def decoded_blocks(conn: Connection, query: Select
                   ) -> Iterator[tuple[Mapping[str, Any], fill_codec.FillColumns]]:
    """Each block row of ``query`` (its key columns) with its decoded fills, in query order."""
    for row in conn.execute(query).mappings():
        where = {name: row[name] for name in _BLOCK_KEYS}
        yield where, fill_codec.decode(row["data"], encoding=row["encoding"],
                                       fills=row["fills"], where=where)


def signals_frame(blocks: Iterable[tuple[Mapping[str, Any], fill_codec.FillColumns]]
                  ) -> pd.DataFrame:
    """The seed's ``backtest_signals`` rows of ``blocks`` (``SIGNAL_COLUMNS``; timestamps
    ``datetime64[ns, UTC]``, NaN pnl for NULL, ``seq`` from 0 in each block)."""
    keys: dict[str, list[np.ndarray]] = {name: [] for name in _BLOCK_KEYS}
    parts, seqs = [], []
    for where, fills in blocks:
        for name in _BLOCK_KEYS:
            keys[name].append(np.full(len(fills), where[name], dtype=object))
        seqs.append(np.arange(len(fills), dtype=np.int64))
        parts.append(fills)
    fills = fill_codec.concat(parts)
    columns: dict[str, Any] = {
        name: np.concatenate(values) if values else np.array([], dtype=object)
        for name, values in keys.items()}
    columns.update(
        timestamp=pd.to_datetime(fills.timestamp).tz_localize("UTC").astype(
            "datetime64[ns, UTC]"),
        seq=np.concatenate(seqs) if seqs else np.array([], dtype=np.int64),
        side=np.array(fill_codec.SIDES, dtype=object)[fills.side],
        action=np.array(fill_codec.ACTIONS, dtype=object)[fills.action],
        price=fills.price, size=fills.size, pnl=fills.pnl)
    return pd.DataFrame({name: columns[name] for name in SIGNAL_COLUMNS})


def read_signals(conn: Connection, strategy: str | None, epic: str | None,
                 partition_keys: Sequence[str] | None, variant: str | None = None
                 ) -> pd.DataFrame:
    """The fills as the seed's ``backtest_signals`` rows, ordered by epic, partition_key
    (variant), seq."""
    return signals_frame(decoded_blocks(
        conn, _blocks_query(strategy, epic, partition_keys, variant)))


def read_closed_trade_pnls(conn: Connection, strategy: str | None, epic: str,
                           variant: str | None = None) -> pd.Series:
    """P&L of each CLOSE fill in time order, as a float Series named ``pnl``."""
    closed = [fills.pnl[fills.action == fill_codec.ACTIONS.index("CLOSE")] for _, fills
              in decoded_blocks(conn, _blocks_query(strategy, epic, None, variant))]
    values = np.concatenate(closed) if closed else np.array([], dtype=float)
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
    """Rows of ``backtest_executions`` and ``backtest_daily_pnl``, and the stored fills under
    ``backtest_signals`` (the rows the seed's table would hold)."""
    def rows(table: Table) -> int:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    fills = conn.execute(select(func.coalesce(func.sum(fill_blocks.c.fills), 0))).scalar_one()
    return {executions.name: rows(executions), SIGNALS_TABLE: int(fills),
            daily_pnl.name: rows(daily_pnl)}


def read_live_signals(conn: Connection, epic: str | None, strategy: str | None,
                      since: dt.datetime | None) -> pd.DataFrame:
    """Every live_signals column (``scanned_at``/``bar_timestamp`` UTC), by bar time, epic,
    strategy; only rows with ``scanned_at >= since`` when given."""
    query = _where_key(select(live_signals), live_signals, strategy, epic)
    if since is not None:
        query = query.where(live_signals.c.scanned_at >= since)
    order = (live_signals.c.bar_timestamp, live_signals.c.epic, live_signals.c.strategy)
    return _frame(conn, query.order_by(*order))
