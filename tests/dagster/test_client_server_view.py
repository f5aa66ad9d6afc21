"""What the client reads from the server, through Dagster's own GraphQL layer on a real
instance: a failed run's step errors with their fix, and the server machine's figures from
the resource monitor's ``machine_health`` observation (not the client's own CPU and memory)."""

import time

from dagster import build_sensor_context, instance_for_test
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import EmptyWorkspaceTarget
from dagster_graphql.test.utils import execute_dagster_graphql

from btpipeline.assets.monitoring.resource_monitor import (
    FIGURES_EVERY_SECONDS,
    evaluate,
    with_current_figures,
)
from btpipeline.client import (
    BREAKER_QUERY,
    STEP_FAILURES_QUERY,
    breaker_state_from,
    machine_figures_from,
    step_failures_from,
)
from btpipeline.monitor.sampler import ResourceSample
from btpipeline.monitor.settings import ResourceMonitorSettings
from tests.support.backtest_runs import run_range

POOLS = {"concurrency": {"pools": {"granularity": "op", "default_limit": 2}}}


def _graphql(instance, document: str, variables: dict | None = None) -> dict:
    with WorkspaceProcessContext(instance, EmptyWorkspaceTarget()) as workspace:
        answer = execute_dagster_graphql(workspace.create_request_context(), document,
                                         variables=variables)
    assert not answer.errors, answer.errors
    return answer.data


def test_a_failed_runs_step_error_and_fix_reach_the_client(tmp_path) -> None:
    from btpipeline.resources.market_data_store import MarketDataStore
    from btpipeline.resources.results_database import ResultsDatabase

    resources = {"market_data": MarketDataStore(root=str(tmp_path / "data")),
                 "results_db": ResultsDatabase(url=f"sqlite:///{tmp_path / 'r.db'}")}
    with instance_for_test() as instance:
        result = run_range(instance, resources, "2024-03-01", "2024-01-01", ["macd_crossover"])
        assert not result.success
        answer = _graphql(instance, STEP_FAILURES_QUERY, {"runId": result.run_id})
        [failure] = step_failures_from(result.run_id, answer)
    assert failure["step"] == "candles__EURUSD"  # the first step; the backtest never starts
    assert "2024-03-01...2024-01-01 is reversed" in failure["error"]
    assert failure["fix"].startswith("give the older month first")


def test_execution_stats_are_the_monitors_published_figures() -> None:
    settings = ResourceMonitorSettings(execution_mode="CONCURRENT")
    with instance_for_test(overrides=POOLS) as instance:
        assert machine_figures_from(_graphql(instance, BREAKER_QUERY))["cpu_percent"] is None
        sample = ResourceSample(0.97, 0.42, 12.5, 0.5, 35.0)
        result = evaluate(build_sensor_context(instance=instance), settings, sample, 0.0)
        for event in result.asset_events:
            instance.report_runless_asset_event(event)
        figures = machine_figures_from(_graphql(instance, BREAKER_QUERY))
    assert round(figures["cpu_percent"], 6) == 97.0
    assert round(figures["memory_percent"], 6) == 42.0
    assert figures["cpu_pressure_avg10"] == 12.5 and figures["scanner_p99_ms"] == 35.0
    assert figures["machine_observed_at"] is not None



def test_the_monitor_publishes_current_figures_while_the_state_holds() -> None:
    """No transition (CLOSED throughout): the figures are still recorded, at most once per
    FIGURES_EVERY_SECONDS, so the client sees the server's current load."""
    settings = ResourceMonitorSettings(execution_mode="CONCURRENT")
    with instance_for_test(overrides=POOLS) as instance:
        def tick(sample: ResourceSample, wall_now: float) -> list:
            context = build_sensor_context(instance=instance)
            result = with_current_figures(context, settings,
                                          evaluate(context, settings, sample, 0.0), sample,
                                          wall_now)
            for event in result.asset_events:
                instance.report_runless_asset_event(event)
            return list(result.asset_events)

        now = time.time()
        assert len(tick(ResourceSample(0.31, 0.42, 1.0, 0.0, None), now)) == 1
        assert tick(ResourceSample(0.55, 0.42, 1.0, 0.0, None), now + 5) == []
        assert len(tick(ResourceSample(0.66, 0.40, 1.0, 0.0, None),
                        now + FIGURES_EVERY_SECONDS + 1)) == 1
        answer = _graphql(instance, BREAKER_QUERY)
    assert breaker_state_from(answer) == "CLOSED"
    assert round(machine_figures_from(answer)["cpu_percent"], 6) == 66.0
