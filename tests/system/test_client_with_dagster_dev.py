"""The Python client (issue 5, item 3), ``btpipeline.client.BacktestClient``, against a real
``dagster dev`` (SQLite instance in tmp, generated EURUSD candles) shared by this module's tests.
Its pure parts: tests/unit/test_client_requests.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from btpipeline.client import BackfillNotFoundError, BacktestClient
from btpipeline.machine.priority import JobPriority
from btpipeline.machine.queue_caps import QueueFullError
from tests.support import btpipeline, project_env
from tests.support.client_requests import BAD_REQUESTS, JAN, MAR
from tests.support.dagster_server import DagsterDev, dagster_dev

BACKFILL_IDS = "{ partitionBackfillsOrError { ... on PartitionBackfills { results { id } } } }"
MATERIALIZED = """
query($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) {
    ... on AssetNode { partitionStats { numMaterialized } }
  }
}"""


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
    # the server machine's figures come from the monitor, which has recorded nothing yet
    assert stats["cpu_percent"] is None and stats["machine_observed_at"] is None
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
