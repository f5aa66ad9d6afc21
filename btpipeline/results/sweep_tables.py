"""The results database's sweep tables (on the backtest tables' ``metadata``).

* ``sweeps``: one row per sweep id: what was swept (strategy, epic, the range, costs, grid,
  rules, ranking) and its status (RUNNING, SUCCESS, FAILED). Starting a sweep with an id that
  is already stored replaces that row and deletes its results.
* ``sweep_results``: one row per combination of a sweep, primary key ``(sweep_id,
  combination)``: its grid position and key, full parameters, every metric (non-finite values
  stored as NULL, as in ``backtest_executions``), the number of fills and the chunk that wrote
  it. A chunk writes its rows in one transaction after deleting its own combinations' rows, so
  a retried chunk leaves each combination stored exactly once.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Double,
    ForeignKey,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from btpipeline.results.tables import UtcDateTime, metadata

SWEEP_STATUSES = ("RUNNING", "SUCCESS", "FAILED")
SWEEP_METRIC_COLUMNS: tuple[str, ...] = (
    "total_return", "sharpe", "sortino", "max_drawdown", "win_rate", "profit_factor",
    "expectancy", "num_trades", "exposure", "pnl",
)

sweeps = Table(
    "sweeps", metadata,
    Column("sweep_id", String(128), primary_key=True),
    Column("strategy", String(200), nullable=False),
    Column("epic", String(16), nullable=False),
    Column("range_start", String(10), nullable=False),
    Column("range_end", String(10), nullable=False),
    Column("costs", JSON, nullable=False),
    Column("grid", JSON, nullable=False),
    Column("rules", JSON, nullable=False),
    Column("rank_by", String(32), nullable=False),
    Column("combinations", Integer, nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("error", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    CheckConstraint(f"status IN {SWEEP_STATUSES!r}", name="status"),
)

sweep_results = Table(
    "sweep_results", metadata,
    Column("sweep_id", String(128), ForeignKey("sweeps.sweep_id", ondelete="CASCADE"),
           nullable=False),
    Column("combination", Integer, nullable=False),
    Column("combination_key", String(200), nullable=False),
    Column("chunk", Integer, nullable=False),
    Column("params", JSON, nullable=False),
    *(Column(name, Double, nullable=True) for name in SWEEP_METRIC_COLUMNS),
    Column("fills", BigInteger, nullable=False),
    Column("compute_ms", Double, nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("written_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("sweep_id", "combination"),
)

SWEEP_TABLES: tuple[Table, ...] = (sweeps, sweep_results)
