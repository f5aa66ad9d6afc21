"""Dagster on PostgreSQL (issue 5, item 1): ``deploy/postgres/dagster.yaml``.

The file must match the top-level dagster.yaml apart from storage and hold no secret; an
instance opened from it keeps runs, event logs, schedules/sensors and backfills in a fresh
PostgreSQL database; and the real ``dagster dev`` on it runs a backfill launched through
GraphQL (by the Python client) whose runs, materializations and backfill row land there.

Each test gets its own database ``btp_dagster_<uuid>``, dropped afterwards. Without a server
the tests skip, unless CI is set: then they fail.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import URL

from btpipeline.client import BacktestClient
from btpipeline.machine.priority import JobPriority
from tests.conftest import PG_TEST_URL, require_postgres
from tests.dagster_server import dagster_dev
from tests.support import REPO, btpipeline, project_env

PG_YAML = REPO / "deploy" / "postgres" / "dagster.yaml"
PG_ENV_VARS = {"username": "DAGSTER_PG_USERNAME", "password": "DAGSTER_PG_PASSWORD",
               "hostname": "DAGSTER_PG_HOST", "db_name": "DAGSTER_PG_DB",
               "port": "DAGSTER_PG_PORT"}
MONTHS = ["2024-01-01", "2024-02-01", "2024-03-01"]
ASSET_KEY_JSON = '["backtest", "macd_crossover", "EURUSD"]'

START_SCHEDULE = """
mutation($selector: ScheduleSelector!) {
  startSchedule(scheduleSelector: $selector) {
    __typename
    ... on ScheduleStateResult { scheduleState { status } }
    ... on PythonError { message }
    ... on ScheduleNotFoundError { message }
  }
}"""


def _admin_url() -> URL:
    return make_url(PG_TEST_URL).set(drivername="postgresql+psycopg2")


@pytest.fixture
def pg_database() -> Iterator[URL]:
    """A fresh, empty database ``btp_dagster_<uuid>``; dropped (connections forced) after."""
    require_postgres()
    name = f"btp_dagster_{uuid.uuid4().hex}"
    admin = create_engine(_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield _admin_url().set(database=name)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _pg_env(url: URL) -> dict[str, str]:
    return {"DAGSTER_PG_USERNAME": url.username or "postgres",
            "DAGSTER_PG_PASSWORD": url.password or "",
            "DAGSTER_PG_HOST": url.host or "127.0.0.1",
            "DAGSTER_PG_DB": url.database or "",
            "DAGSTER_PG_PORT": str(url.port or 5432)}


def _postgres_home(tmp_path: Path, url: URL) -> dict[str, str]:
    """project_env (DAGSTER_HOME and BTPIPELINE_HOME in tmp) with the Postgres dagster.yaml."""
    env = project_env(tmp_path, **_pg_env(url))
    (Path(env["DAGSTER_HOME"]) / "dagster.yaml").write_text(PG_YAML.read_text())
    return env


def _rows(url: URL, sql: str, **params: object) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


# --- the file itself --------------------------------------------------------------------------

def test_postgres_yaml_matches_the_top_level_file_except_storage() -> None:
    postgres = yaml.safe_load(PG_YAML.read_text())
    top = yaml.safe_load((REPO / "dagster.yaml").read_text())
    storage = postgres.pop("storage")
    assert postgres == top, "deploy/postgres/dagster.yaml drifted from dagster.yaml"
    assert list(storage) == ["postgres"]


def test_postgres_yaml_takes_every_connection_setting_from_the_environment() -> None:
    db = yaml.safe_load(PG_YAML.read_text())["storage"]["postgres"]["postgres_db"]
    assert {k: db[k] for k in PG_ENV_VARS} == {k: {"env": v} for k, v in PG_ENV_VARS.items()}
    # dagster-postgres 0.29 recognises the table-creation race by psycopg2 error codes only.
    assert db["scheme"] == "postgresql+psycopg2"
    assert set(db) == set(PG_ENV_VARS) | {"scheme"}


# --- an instance opened from it ---------------------------------------------------------------

@pytest.mark.postgres
def test_an_instance_from_the_file_stores_everything_in_postgres(
        pg_database: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster import DagsterInstance

    env = _postgres_home(tmp_path, pg_database)
    for key in ("DAGSTER_HOME", *PG_ENV_VARS.values()):
        monkeypatch.setenv(key, env[key])
    with DagsterInstance.get() as instance:  # empty password = none in the URL (trust auth)
        names = {type(s).__name__ for s in (instance.run_storage, instance.event_log_storage,
                                             instance.schedule_storage)}
        assert names == {"PostgresRunStorage", "PostgresEventLogStorage",
                         "PostgresScheduleStorage"}
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        concurrency = instance.get_concurrency_config()  # the same queue and pools as SQLite
        assert concurrency.run_queue_config.max_concurrent_runs == 2
        assert concurrency.pool_config.pool_granularity.value == "op"
    tables = {r[0] for r in _rows(pg_database, "SELECT tablename FROM pg_tables "
                                  "WHERE schemaname = 'public'")}
    assert {"runs", "run_tags", "event_logs", "bulk_actions", "instigators", "jobs",
            "job_ticks", "kvs", "concurrency_slots"} <= tables
    assert not list(Path(env["DAGSTER_HOME"]).rglob("*.db")), "no SQLite file may appear"


@pytest.mark.postgres
def test_an_unset_variable_is_named_in_the_error(
        pg_database: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster import DagsterInstance

    env = _postgres_home(tmp_path, pg_database)
    for key in ("DAGSTER_HOME", *PG_ENV_VARS.values()):
        monkeypatch.setenv(key, env[key])
    monkeypatch.delenv("DAGSTER_PG_PASSWORD")
    with pytest.raises(Exception, match="DAGSTER_PG_PASSWORD"):
        DagsterInstance.get()


# --- the real dagster dev ---------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_a_graphql_backfill_in_dagster_dev_is_stored_in_postgres(
        pg_database: URL, tmp_path: Path) -> None:
    env = _postgres_home(tmp_path, pg_database)
    btpipeline("generate", "--epics", "EURUSD", "--start", "2023-12-01", "--end", "2024-03-31",
               env=env)
    with dagster_dev(env, tmp_path / "dagster-dev.log") as server:
        started = server.graphql(START_SCHEDULE, {"selector": {
            "repositoryLocationName": "btpipeline", "repositoryName": "__repository__",
            "scheduleName": "nightly_backtest"}})["startSchedule"]
        assert started["__typename"] == "ScheduleStateResult", started
        client = BacktestClient(port=server.port)
        backfill_id = client.submit_backtest("macd_crossover", ["EURUSD"], dt.date(2024, 1, 1),
                                             dt.date(2024, 3, 1), priority=JobPriority.HIGH)
        status = client.wait(backfill_id, timeout=180, poll=2)
        assert status["status"] == "completed", f"{status}{server.log_tail()}"
    assert server.stragglers == [], f"processes outlived dagster dev: {server.stragglers}"
    _assert_stored_in_postgres(pg_database, backfill_id)
    assert not list(Path(env["DAGSTER_HOME"]).rglob("*.db")), "no SQLite file may appear"


def _assert_stored_in_postgres(url: URL, backfill_id: str) -> None:
    runs = _rows(url, "SELECT r.run_id, r.status FROM runs r JOIN run_tags t "
                 "ON t.run_id = r.run_id AND t.key = 'dagster/backfill' WHERE t.value = :b",
                 b=backfill_id)
    assert [status for _, status in runs] == ["SUCCESS"], runs
    run_id = runs[0][0]
    priority = _rows(url, "SELECT value FROM run_tags WHERE run_id = :r "
                     "AND key = 'btpipeline/priority'", r=run_id)
    assert priority == [("HIGH",)]
    materialized = _rows(url, "SELECT partition FROM event_logs WHERE run_id = :r AND "
                         "dagster_event_type = 'ASSET_MATERIALIZATION' AND asset_key = :k "
                         "ORDER BY partition", r=run_id, k=ASSET_KEY_JSON)
    assert [p for (p,) in materialized] == MONTHS
    assert _rows(url, "SELECT status FROM bulk_actions WHERE key = :b",
                 b=backfill_id) == [("COMPLETED_SUCCESS",)]
    schedules = _rows(url, "SELECT status FROM instigators WHERE instigator_type = 'SCHEDULE' "
                      "AND instigator_body LIKE '%nightly_backtest%'")
    assert schedules == [("RUNNING",)]
    assert _rows(url, "SELECT status FROM jobs WHERE job_type = 'SCHEDULE' "
                 "AND job_body LIKE '%nightly_backtest%'") == [("RUNNING",)]
