"""Bring a results database to the newest schema: Alembic's ``upgrade head`` with the revisions
in ``migrations/``, on the engine's own connection (so a PostgreSQL schema set with
``schema_translate_map`` is the one migrated; its ``alembic_version`` table lives there too).

Cheap when nothing is to do: the stored revision is read first and compared with the head.
Concurrent openers take turns (PostgreSQL advisory lock; SQLite's write lock).
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy.schema import CreateSchema

from btpipeline.results.engine import connect

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_LOCK_ID = 0x6274_7069_7065  # the advisory lock create_tables took: one DDL writer at a time


@functools.lru_cache(maxsize=1)
def head_revision() -> str:
    """The newest revision in ``migrations/versions``."""
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None, f"no Alembic revision under {MIGRATIONS}"
    return head


def _config(conn: Connection, db_schema: str | None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    config.attributes["schema"] = db_schema
    return config


def current_revision(conn: Connection, db_schema: str | None) -> str | None:
    """The revision stored in the database (None: not managed by Alembic yet, or empty)."""
    context = MigrationContext.configure(conn, opts={"version_table_schema": db_schema})
    return context.get_current_revision()


def upgrade(engine: Engine, db_schema: str | None, revision: str = "head") -> None:
    """Create the schema (PostgreSQL) and run every revision up to ``revision`` not yet run."""
    with connect(engine, "read the results schema revision") as conn:
        if revision == "head" and current_revision(conn, db_schema) == head_revision():
            return
    with connect(engine, f"upgrade the results schema to {revision}", write=True) as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
            if db_schema:
                conn.execute(CreateSchema(db_schema, if_not_exists=True))
        command.upgrade(_config(conn, db_schema), revision)
