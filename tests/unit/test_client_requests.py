"""The Python client (issue 5, item 3) without a server: ``btpipeline.client.BacktestClient``'s
validation, the GraphQL request it builds, status normalisation. Against a real
``dagster dev``: tests/system/test_client_with_dagster_dev.py."""

from __future__ import annotations

import datetime as dt

import pytest
from dagster_graphql.schema import create_schema
from graphql import parse, validate

from btpipeline import client as client_module
from btpipeline.client import (
    DEADLINE_TAG,
    BacktestClient,
    DagsterUnavailableError,
    backfill_params,
)
from btpipeline.errors import InvalidParameterError
from btpipeline.machine.priority import JobPriority
from tests.support import free_port
from tests.support.client_requests import BAD_REQUESTS, JAN, MAR


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
                     client_module._QUEUE, client_module.BREAKER_QUERY,
                     client_module.STEP_FAILURES_QUERY):
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
