"""Dagster on PostgreSQL (issue 5, item 1): the real ``dagster dev`` on
``deploy/postgres/dagster.yaml`` runs a backfill launched through GraphQL (by the Python
client) whose runs, materializations and backfill row land in a fresh PostgreSQL database
(``pg_database`` in tests/conftest.py, dropped afterwards).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from btpipeline.client import BacktestClient
from btpipeline.machine.priority import JobPriority
from tests.support import btpipeline
from tests.support.dagster_server import dagster_dev
from tests.support.postgres import postgres_home, rows

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


# --- the real dagster dev ---------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_a_graphql_backfill_in_dagster_dev_is_stored_in_postgres(
        pg_database: URL, tmp_path: Path) -> None:
    env = postgres_home(tmp_path, pg_database)
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
    runs = rows(url, "SELECT r.run_id, r.status FROM runs r JOIN run_tags t "
                 "ON t.run_id = r.run_id AND t.key = 'dagster/backfill' WHERE t.value = :b",
                 b=backfill_id)
    assert [status for _, status in runs] == ["SUCCESS"], runs
    run_id = runs[0][0]
    priority = rows(url, "SELECT value FROM run_tags WHERE run_id = :r "
                     "AND key = 'btpipeline/priority'", r=run_id)
    assert priority == [("HIGH",)]
    materialized = rows(url, "SELECT partition FROM event_logs WHERE run_id = :r AND "
                         "dagster_event_type = 'ASSET_MATERIALIZATION' AND asset_key = :k "
                         "ORDER BY partition", r=run_id, k=ASSET_KEY_JSON)
    assert [p for (p,) in materialized] == MONTHS
    assert rows(url, "SELECT status FROM bulk_actions WHERE key = :b",
                 b=backfill_id) == [("COMPLETED_SUCCESS",)]
    schedules = rows(url, "SELECT status FROM instigators WHERE instigator_type = 'SCHEDULE' "
                      "AND instigator_body LIKE '%nightly_backtest%'")
    assert schedules == [("RUNNING",)]
    assert rows(url, "SELECT status FROM jobs WHERE job_type = 'SCHEDULE' "
                 "AND job_body LIKE '%nightly_backtest%'") == [("RUNNING",)]
