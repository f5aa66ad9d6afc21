"""Results keyed by variant: ``variant`` and ``params_hash`` on every backtest table, and the
unique keys on variant instead of strategy, so two variants of one strategy keep their own rows.

Existing rows get ``variant = strategy`` (before the universe file each strategy was its own
variant) and ``params_hash`` = ``settings_hash`` of the stored params JSON (signals and daily
rows: of the execution whose range holds their partition; attempts: of the execution of the
same run). Constraint changes run in batch mode (SQLite recreates the table).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from btpipeline.results.hashing import settings_hash
from btpipeline.results.migrations.naming import NAMING, revision_schema

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

EXECUTIONS, ATTEMPTS = "backtest_executions", "backtest_execution_attempts"
SIGNALS, DAILY = "backtest_signals", "backtest_daily_pnl"
# table -> (columns of its old unique key or index, of the new one, kind)
KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    EXECUTIONS: (("strategy", "epic", "partition_start", "partition_end"),
                 ("variant", "epic", "partition_start", "partition_end"), "unique"),
    ATTEMPTS: (("strategy", "epic", "partition_start"),
               ("variant", "epic", "partition_start"), "index"),
    SIGNALS: (("strategy", "epic", "partition_key", "seq"),
              ("variant", "epic", "partition_key", "seq"), "unique"),
    DAILY: (("strategy", "epic", "partition_key"), ("variant", "epic", "partition_key"),
            "index"),
}


def _table(name: str, *columns: str) -> sa.TableClause:
    return sa.table(name, *(sa.column(c) for c in columns), schema=revision_schema())


def upgrade() -> None:
    schema = revision_schema()
    for name in KEYS:
        with op.batch_alter_table(name, schema=schema, naming_convention=NAMING) as batch:
            batch.add_column(sa.Column("variant", sa.String(64), nullable=True))
            batch.add_column(sa.Column("params_hash", sa.String(16), nullable=True))
        op.execute(_table(name, "variant", "strategy").update().values(
            variant=sa.literal_column("strategy")))
    _backfill_hashes()
    for name, (old, new, kind) in KEYS.items():
        _rekey(name, old, new, kind, schema)


def _rekey(name: str, old: tuple[str, ...], new: tuple[str, ...], kind: str,
           schema: str | None) -> None:
    """``variant`` NOT NULL, and the key on ``old`` columns replaced by one on ``new``."""
    inspector = sa.inspect(op.get_bind())
    with op.batch_alter_table(name, schema=schema, naming_convention=NAMING) as batch:
        batch.alter_column("variant", existing_type=sa.String(64), nullable=False)
        if kind == "unique":
            found = [c["name"] for c in inspector.get_unique_constraints(name, schema=schema)
                     if tuple(c["column_names"]) == old]
            for constraint in found:
                batch.drop_constraint(str(constraint), type_="unique")
            # None: named by the naming convention, shortened as each database needs (the
            # name of the executions' key is longer than PostgreSQL's 63 characters)
            batch.create_unique_constraint(None, list(new))  # type: ignore[arg-type]
        else:
            found = [i["name"] for i in inspector.get_indexes(name, schema=schema)
                     if tuple(i["column_names"]) == old]
            for index in found:
                batch.drop_index(str(index))
            batch.create_index(None, list(new))  # type: ignore[arg-type]
        if name == DAILY:
            batch.drop_constraint(f"pk_{DAILY}", type_="primary")
            batch.create_primary_key(f"pk_{DAILY}", ["variant", "epic", "day"])


def _backfill_hashes() -> None:
    """``params_hash`` of each execution, and of the signals, daily rows and attempts that
    belong to it."""
    bind = op.get_bind()
    executions = sa.table(EXECUTIONS, sa.column("id"), sa.column("strategy"),
                          sa.column("epic"), sa.column("partition_start"),
                          sa.column("partition_end"), sa.column("run_id"),
                          sa.column("status"), sa.column("params", sa.JSON),
                          sa.column("params_hash"), schema=revision_schema())
    rows = bind.execute(sa.select(executions).where(executions.c.params.is_not(None))).all()
    for row in rows:
        digest = settings_hash(row.params)
        bind.execute(executions.update().where(executions.c.id == row.id)
                     .values(params_hash=digest))
        _hash_run_rows(bind, row, digest)


def _hash_run_rows(bind: sa.Connection, row: Any, digest: str) -> None:
    attempts = _table(ATTEMPTS, "strategy", "epic", "run_id", "params_hash")
    bind.execute(attempts.update().where(
        attempts.c.strategy == row.strategy, attempts.c.epic == row.epic,
        attempts.c.run_id == row.run_id).values(params_hash=digest))
    if row.status != "SUCCESS":
        return
    for name in (SIGNALS, DAILY):
        table = _table(name, "strategy", "epic", "partition_key", "params_hash")
        bind.execute(table.update().where(
            table.c.strategy == row.strategy, table.c.epic == row.epic,
            table.c.partition_key >= row.partition_start,
            table.c.partition_key <= row.partition_end).values(params_hash=digest))


def downgrade() -> None:
    raise NotImplementedError("The results schema is not downgraded: restore a backup instead.")
