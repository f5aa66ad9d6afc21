"""The Python client (issue 5, item 3): ``btpipeline.client.BacktestClient``.

Pure parts (validation, the GraphQL request it builds, status normalisation) run without a
server; the rest runs against a real ``dagster dev`` (SQLite instance in tmp, generated
EURUSD candles), shared by this module's server tests.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from dagster_graphql.schema import create_schema
from graphql import parse, validate

from btpipeline import client as client_module
from btpipeline.client import (
    DEADLINE_TAG,
    BackfillNotFoundError,
    BacktestClient,
    DagsterUnavailableError,
    backfill_params,
)
from btpipeline.errors import (
    InvalidDateRangeError,
    InvalidParameterError,
    UnknownEpicError,
    UnknownStrategyError,
)
from btpipeline.machine.priority import JobPriority
from btpipeline.machine.queue_caps import QueueFullError
from tests.dagster_server import DagsterDev, dagster_dev
from tests.support import btpipeline, free_port, project_env

JAN, MAR = dt.date(2024, 1, 1), dt.date(2024, 3, 31)
BACKFILL_IDS = "{ partitionBackfillsOrError { ... on PartitionBackfills { results { id } } } }"
MATERIALIZED = """
query($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) {
    ... on AssetNode { partitionStats { numMaterialized } }
  }
}"""
BAD_REQUESTS = [
    pytest.param(("MACD_Strategy", ["EURUSD"], JAN, MAR), UnknownStrategyError, id="strategy"),
    pytest.param(("macd_crossover", ["EURUSD", "XAUUSD"], JAN, MAR), UnknownEpicError,
                 id="epic"),
    pytest.param(("macd_crossover", ["EURUSD"], MAR, JAN), InvalidDateRangeError,
                 id="inverted"),
    pytest.param(("macd_crossover", ["EURUSD"], dt.date(2019, 6, 1), MAR),
                 InvalidDateRangeError, id="before-partitions"),
    pytest.param(("macd_crossover", ["EURUSD"], JAN, dt.date.today() + dt.timedelta(days=62)),
                 InvalidDateRangeError, id="future"),
    pytest.param(("macd_crossover", [], JAN, MAR), InvalidParameterError, id="no-epics"),
]


# --- without a server -------------------------------------------------------------------------

def test_the_request_covers_every_epic_over_the_months_with_priority_tags() -> None:
    deadline = dt.datetime(2099, 1, 2, 3, 4, tzinfo=dt.timezone.utc)
    params = backfill_params("macd_crossover", ["EUR/USD", "GBPUSD", "EURUSD"],
                             dt.date(2024, 1, 15), dt.date(2024, 3, 2), JobPriority.BULK,
                             deadline)
    assert params["partitionsByAssets"] == [
        {"assetKey": {"path": ["backtest", "macd_crossover", epic]},
         "partitions": {"range": {"start": "2024-01-01", "end": "2024-03-01"}}}
        for epic in ("EURUSD", "GBPUSD")
    ]
    assert "assetSelection" not in params  # Dagster refuses it next to partitionsByAssets
    assert {t["key"]: t["value"] for t in params["tags"]} == {
        "btpipeline/priority": "BULK", "dagster/priority": "-20",
        "btpipeline/preemptible": "true", DEADLINE_TAG: "2099-01-02T03:04:00+00:00"}


def test_the_graphql_documents_are_valid_for_the_installed_schema() -> None:
    schema = create_schema().graphql_schema
    assert "tags" in schema.get_type("LaunchBackfillParams").fields
    for document in (client_module._LAUNCH, client_module._BACKFILL, client_module._RUN_COUNTS,
                     client_module._QUEUE, client_module._BREAKER):
        assert validate(schema, parse(document)) == []


@pytest.mark.parametrize(("args", "error"), BAD_REQUESTS)
def test_a_bad_request_is_refused_before_any_connection(args: tuple, error: type) -> None:
    nobody = BacktestClient(port=free_port())  # nothing listens there
    with pytest.raises(error, match="Fix"):
        nobody.submit_backtest(*args)


def test_a_past_deadline_and_an_unknown_priority_are_refused() -> None:
    past = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    with pytest.raises(InvalidParameterError, match="already passed"):
        backfill_params("macd_crossover", "EURUSD", JAN, MAR, deadline=past)
    with pytest.raises(InvalidParameterError, match="Unknown priority"):
        backfill_params("macd_crossover", "EURUSD", JAN, MAR, priority="URGENT")


def test_an_unreachable_webserver_is_named_with_the_fix() -> None:
    port = free_port()
    with pytest.raises(DagsterUnavailableError, match=f"127.0.0.1:{port}.*Fix"):
        BacktestClient(port=port).get_execution_stats()


@pytest.mark.parametrize(("raw", "runs", "failed", "expected"), [
    ("REQUESTED", [], 0, "queued"),
    ("REQUESTED", [{"status": "queued"}], 0, "queued"),
    ("REQUESTED", [{"status": "running"}], 0, "running"),
    ("CANCELING", [], 0, "running"),
    ("COMPLETED_SUCCESS", [{"status": "completed"}], 0, "completed"),
    ("COMPLETED", [{"status": "completed"}], 1, "failed"),
    ("COMPLETED_FAILED", [{"status": "failed"}], 1, "failed"),
    ("FAILED", [], 0, "failed"),
    ("CANCELED", [], 0, "canceled"),
])
def test_dagster_backfill_statuses_map_to_five(raw: str, runs: list, failed: int,
                                                expected: str) -> None:
    partitions = {"total": 3, "done": 3 - failed, "failed": failed, "in_progress": 0}
    assert client_module._normalise_backfill(raw, partitions, runs) == expected


def test_the_module_functions_use_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BTPIPELINE_DAGSTER_HOST", "localhost")
    monkeypatch.setenv("BTPIPELINE_DAGSTER_PORT", "3999")
    assert client_module.default_client().url == "http://localhost:3999/graphql"


# --- against dagster dev ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterDev]:
    tmp = tmp_path_factory.mktemp("client")
    env = project_env(tmp)
    btpipeline("generate", "--epics", "EURUSD", "--start", "2023-12-01", "--end", "2024-03-31",
               env=env)
    with dagster_dev(env, tmp / "dagster-dev.log") as running:
        yield running
    assert running.stragglers == [], f"processes outlived dagster dev: {running.stragglers}"


def _backfill_ids(server: DagsterDev) -> list[str]:
    return [b["id"] for b in server.graphql(BACKFILL_IDS)["partitionBackfillsOrError"]["results"]]


@pytest.mark.slow
def test_bad_requests_create_no_backfill(server: DagsterDev) -> None:
    client = BacktestClient(port=server.port)
    before = _backfill_ids(server)
    for bad in BAD_REQUESTS:
        with pytest.raises(bad.values[1]):
            client.submit_backtest(*bad.values[0])
    assert _backfill_ids(server) == before
    with pytest.raises(BackfillNotFoundError, match="nosuchid"):
        client.get_job_status("nosuchid")


@pytest.mark.slow
def test_a_submission_over_its_priority_cap_is_refused_and_nothing_is_queued(
        server: DagsterDev, monkeypatch: pytest.MonkeyPatch) -> None:
    client = BacktestClient(port=server.port)
    before = _backfill_ids(server)
    monkeypatch.setenv("BTPIPELINE_QUEUE_CAP_BULK", "0")
    with pytest.raises(QueueFullError, match="BULK run.*cap 0.*BTPIPELINE_QUEUE_CAP_BULK"):
        client.submit_backtest("macd_crossover", "EURUSD", JAN, MAR, priority="BULK")
    assert _backfill_ids(server) == before


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_submit_and_wait_materializes_every_month(server: DagsterDev) -> None:
    client = BacktestClient(port=server.port)
    deadline = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    job_id = client.submit_backtest("macd_crossover", ["EUR/USD"], JAN, MAR,
                                    priority=JobPriority.HIGH, deadline=deadline)
    assert job_id in _backfill_ids(server)
    first = client.get_job_status(job_id)
    assert first["status"] in {"queued", "running"}
    assert first["partitions"]["total"] == 3

    stats = client.get_execution_stats()
    assert 0.0 <= stats["cpu_percent"] <= 100.0 and 0.0 < stats["memory_percent"] < 100.0
    assert stats["runs_queued"] >= 0 and stats["runs_running"] >= 0
    assert stats["breaker_state"] == "CLOSED"  # the monitor has recorded no transition

    status = client.wait(job_id, timeout=240, poll=2)
    assert status["status"] == "completed", f"{status}{server.log_tail()}"
    assert status["partitions"] == {"total": 3, "done": 3, "failed": 0, "in_progress": 0}
    assert [r["status"] for r in status["runs"]] == ["completed"]
    assert status["priority"] == "HIGH"
    assert status["deadline"] == deadline.isoformat()
    node = server.graphql(MATERIALIZED, {"path": ["backtest", "macd_crossover", "EURUSD"]})
    assert node["assetNodeOrError"]["partitionStats"]["numMaterialized"] == 3
    after = client.get_execution_stats()
    assert after["runs_queued"] == after["runs_running"] == 0
