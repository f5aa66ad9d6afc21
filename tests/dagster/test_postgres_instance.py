"""Dagster on PostgreSQL (issue 5, item 1): an instance opened from
``deploy/postgres/dagster.yaml`` keeps runs, event logs, schedules/sensors and backfills in a
fresh PostgreSQL database (``pg_database`` in tests/conftest.py, dropped afterwards). Without a
server the tests skip, unless CI is set: then they fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from tests.support.postgres import PG_ENV_VARS, postgres_home, rows

# --- an instance opened from it ---------------------------------------------------------------

@pytest.mark.postgres
def test_an_instance_from_the_file_stores_everything_in_postgres(
        pg_database: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster import DagsterInstance

    env = postgres_home(tmp_path, pg_database)
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
    tables = {r[0] for r in rows(pg_database, "SELECT tablename FROM pg_tables "
                                  "WHERE schemaname = 'public'")}
    assert {"runs", "run_tags", "event_logs", "bulk_actions", "instigators", "jobs",
            "job_ticks", "kvs", "concurrency_slots"} <= tables
    assert not list(Path(env["DAGSTER_HOME"]).rglob("*.db")), "no SQLite file may appear"


@pytest.mark.postgres
def test_an_unset_variable_is_named_in_the_error(
        pg_database: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster import DagsterInstance

    env = postgres_home(tmp_path, pg_database)
    for key in ("DAGSTER_HOME", *PG_ENV_VARS.values()):
        monkeypatch.setenv(key, env[key])
    monkeypatch.delenv("DAGSTER_PG_PASSWORD")
    with pytest.raises(Exception, match="DAGSTER_PG_PASSWORD"):
        DagsterInstance.get()


