"""Shared pytest fixtures."""

# ==== BEGIN results-database fixtures (PostgreSQL / results part; keep other fixtures outside) ====
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from btpipeline.resources.results_database import ResultsDatabase
from btpipeline.results.engine import normalize_url, redact

PG_TEST_URL = os.environ.get("BTPIPELINE_TEST_PG_URL",
                             "postgresql://postgres@127.0.0.1:5432/test")


def _postgres_unreachable() -> str | None:
    """None if the test server answers, else why not."""
    engine = create_engine(normalize_url(PG_TEST_URL), connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return None
    except Exception as error:  # any failure means "not usable"
        return f"{type(error).__name__}: {str(error).strip().splitlines()[0]}"
    finally:
        engine.dispose()


def require_postgres() -> None:
    """Skip when the server is down, unless CI is set: then fail loudly."""
    reason = _postgres_unreachable()
    if reason is None:
        return
    message = f"PostgreSQL at {redact(PG_TEST_URL)} is unreachable ({reason})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI is set, so the PostgreSQL tests must run.", pytrace=False)
    pytest.skip(f"{message}; start it or set BTPIPELINE_TEST_PG_URL (CI unset, so skipping).")


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    """A fresh, empty schema name ``btp_test_<uuid>``, dropped (CASCADE) after the test."""
    require_postgres()
    name = f"btp_test_{uuid.uuid4().hex}"
    yield name
    engine = create_engine(normalize_url(PG_TEST_URL))
    try:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    finally:
        engine.dispose()


def _make_results_db(backend: str, tmp_path: Path, request: pytest.FixtureRequest
                     ) -> ResultsDatabase:
    if backend == "sqlite":
        return ResultsDatabase(url=f"sqlite:///{tmp_path / 'results.db'}")
    schema = request.getfixturevalue("postgres_schema")
    return ResultsDatabase(url=PG_TEST_URL, db_schema=schema)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def results_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ResultsDatabase]:
    """The same ``ResultsDatabase`` API on SQLite (tmp file) and on PostgreSQL (own schema)."""
    db = _make_results_db(request.param, tmp_path, request)
    yield db
    db.dispose()
# ==== END results-database fixtures ====
