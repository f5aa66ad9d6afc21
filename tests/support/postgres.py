"""The PostgreSQL server the tests use (127.0.0.1:5432 unless BTPIPELINE_TEST_PG_URL says
otherwise), and the Dagster-on-PostgreSQL home built from ``deploy/postgres/dagster.yaml``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

from btpipeline.results.engine import normalize_url, redact
from tests.support import REPO, project_env

PG_TEST_URL = os.environ.get("BTPIPELINE_TEST_PG_URL",
                             "postgresql://postgres@127.0.0.1:5432/test")
PG_YAML = REPO / "deploy" / "postgres" / "dagster.yaml"
PG_ENV_VARS = {"username": "DAGSTER_PG_USERNAME", "password": "DAGSTER_PG_PASSWORD",
               "hostname": "DAGSTER_PG_HOST", "db_name": "DAGSTER_PG_DB",
               "port": "DAGSTER_PG_PORT"}


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


def pg_env(url: URL) -> dict[str, str]:
    """The DAGSTER_PG_* variables ``deploy/postgres/dagster.yaml`` reads, for ``url``."""
    return {"DAGSTER_PG_USERNAME": url.username or "postgres",
            "DAGSTER_PG_PASSWORD": url.password or "",
            "DAGSTER_PG_HOST": url.host or "127.0.0.1",
            "DAGSTER_PG_DB": url.database or "",
            "DAGSTER_PG_PORT": str(url.port or 5432)}


def postgres_home(tmp_path: Path, url: URL) -> dict[str, str]:
    """project_env (DAGSTER_HOME and BTPIPELINE_HOME in tmp) with the Postgres dagster.yaml."""
    env = project_env(tmp_path, **pg_env(url))
    (Path(env["DAGSTER_HOME"]) / "dagster.yaml").write_text(PG_YAML.read_text())
    return env


def rows(url: URL, sql: str, **params: object) -> list[tuple]:
    """All rows of one query on ``url``, as tuples."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]
    finally:
        engine.dispose()
