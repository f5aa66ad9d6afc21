"""ResultsDatabase configuration and connection errors: URLs, schemas, the resource's fields.
Inside a Dagster run: tests/dagster/test_resources_in_a_run.py."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from btpipeline.errors import ResultsDatabaseError, ResultsDatabaseUnavailableError
from btpipeline.resources.results_database import ResultsDatabase
from btpipeline.results.engine import normalize_url, redact
from btpipeline.results.sweep_tables import SWEEP_TABLES
from tests.support.postgres import PG_TEST_URL, require_postgres

TABLES = {"backtest_executions", "backtest_signals", "backtest_daily_pnl"}  # count_rows' keys
# The backtest and sweep tables (fills in blocks), and Alembic's revision table in the same
# schema (results/migrate.py)
CREATED = ({"backtest_executions", "backtest_fill_blocks", "backtest_daily_pnl",
            "backtest_execution_attempts", "alembic_version"}
           | {t.name for t in SWEEP_TABLES})
_T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def test_an_unparseable_url_is_refused_without_its_password() -> None:
    with pytest.raises(ResultsDatabaseError, match="not a valid SQLAlchemy URL") as caught:
        ResultsDatabase(url="this is not a url :secret@").count_rows()
    assert "Fix:" in str(caught.value)


def test_an_unsupported_backend_is_refused_without_its_password() -> None:
    with pytest.raises(ResultsDatabaseError, match="only SQLite and PostgreSQL") as caught:
        ResultsDatabase(url="mysql://bob:hunter2@db.example:3306/results").ping()
    assert "hunter2" not in str(caught.value)
    assert "bob:***@db.example:3306" in str(caught.value)


@pytest.mark.parametrize("call", ["ping", "count_rows", "create_schema"])
def test_an_unreachable_server_names_the_url_without_password(call: str) -> None:
    db = ResultsDatabase(url="postgresql://alice:s3cret@127.0.0.1:1/results", retry_seconds=0.5)
    with pytest.raises(ResultsDatabaseUnavailableError) as caught:
        getattr(db, call)()
    message = str(caught.value)
    assert "s3cret" not in message
    assert "alice:***@127.0.0.1:1/results" in message
    assert "unavailable" in message and "reachable" in message and "Fix:" in message
    assert "correct the input" not in message


def test_redact_hides_passwords_in_strings_and_urls() -> None:
    assert redact("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    assert redact(normalize_url("postgresql://u:pw@h/db")) == "postgresql+psycopg://u:***@h/db"
    assert redact("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


@pytest.mark.parametrize("url", ["postgresql://u@h/db", "postgres://u@h/db",
                                 "postgresql+psycopg://u@h/db"])
def test_postgres_urls_use_psycopg_3(url: str) -> None:
    assert normalize_url(url).drivername == "postgresql+psycopg"


def test_a_schema_on_sqlite_is_refused(tmp_path: Path) -> None:
    db = ResultsDatabase(url=f"sqlite:///{tmp_path / 'r.db'}", db_schema="btp")
    with pytest.raises(ResultsDatabaseError, match="only supported on PostgreSQL"):
        db.count_rows()


def test_the_default_is_a_sqlite_file_under_btpipeline_home(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BTPIPELINE_RESULTS_URL", raising=False)
    monkeypatch.setenv("BTPIPELINE_HOME", str(tmp_path / "home"))
    db = ResultsDatabase()
    assert db.url == f"sqlite:///{tmp_path / 'home' / 'results.db'}"
    db.ping()
    assert db.count_rows() == {name: 0 for name in TABLES}
    assert (tmp_path / "home" / "results.db").exists()  # the missing folder was created
    db.dispose()


def test_the_url_can_come_from_the_environment(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BTPIPELINE_RESULTS_URL", f"sqlite:///{tmp_path / 'env.db'}")
    assert ResultsDatabase().url == f"sqlite:///{tmp_path / 'env.db'}"


def test_config_fields_are_described() -> None:
    fields = ResultsDatabase.model_fields
    assert set(fields) == {"url", "db_schema", "retry_seconds"}
    assert all(field.description for field in fields.values())


def _tables_in(schema: str) -> set[str]:
    engine = create_engine(normalize_url(PG_TEST_URL))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT table_name FROM information_schema.tables "
                                     "WHERE table_schema = :s"), {"s": schema})
            return {row[0] for row in rows}
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_missing_postgres_schema_is_created_and_isolates(postgres_schema: str) -> None:
    db = ResultsDatabase(url=PG_TEST_URL, db_schema=postgres_schema)
    db.create_schema()
    db.create_schema()  # idempotent
    assert _tables_in(postgres_schema) == CREATED
    db.record_failure(strategy="s", epic="EURUSD", partition_keys=["2024-01-01"], run_id="r",
                      started_at=_T0, finished_at=_T0, error="boom")
    assert db.count_rows()["backtest_executions"] == 1
    db.dispose()


@pytest.mark.postgres
def test_concurrent_first_use_creates_the_tables_once(postgres_schema: str) -> None:
    errors: list[BaseException] = []

    def first_use() -> None:
        db = ResultsDatabase(url=PG_TEST_URL, db_schema=postgres_schema)
        try:
            db.count_rows()
        except BaseException as error:  # collected and asserted below
            errors.append(error)
        finally:
            db.dispose()

    threads = [threading.Thread(target=first_use) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _tables_in(postgres_schema) == CREATED


@pytest.mark.postgres
def test_postgres_ping_succeeds_when_up() -> None:
    require_postgres()
    ResultsDatabase(url=PG_TEST_URL).ping()
