"""The resource_monitor sensor throttles the backtest pool through Dagster's own concurrency
slots: OPEN closes the pool, HALF_OPEN gives one slot, CLOSED restores it (a real test instance,
ticks built with build_sensor_context). The breaker's rules: tests/unit/test_circuit_breaker.py."""

from dagster import build_sensor_context, instance_for_test
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import EmptyWorkspaceTarget
from dagster_graphql.test.utils import execute_dagster_graphql

from btpipeline.assets.keys import HEALTH_KEY
from btpipeline.assets.monitoring.resource_monitor import PROTECTION_METADATA_KEY, evaluate
from btpipeline.client import BREAKER_QUERY, breaker_state_from
from btpipeline.machine.protection_state import CircuitState
from btpipeline.monitor.queue_control import breaker_holds_pool, read_published_protection
from btpipeline.monitor.sampler import ResourceSample
from btpipeline.monitor.settings import ResourceMonitorSettings

POOLS = {"concurrency": {"pools": {"granularity": "op", "default_limit": 2}}}


def _sample(cpu=0.2, memory=0.3, pressure=1.0, latency=None) -> ResourceSample:
    return ResourceSample(cpu, memory, pressure, 0.0, latency)


def test_the_sensor_closes_the_pool_when_open_and_restores_it_when_closed() -> None:
    settings = ResourceMonitorSettings(cooldown_seconds=10, probe_seconds=20, normal_pool_limit=2)
    with instance_for_test(overrides=POOLS) as instance:
        def tick(cursor, sample, now):
            context = build_sensor_context(instance=instance, cursor=cursor)
            result = evaluate(context, settings, sample, now)
            slots = instance.event_log_storage.get_concurrency_info("backtests").slot_count
            return result, slots

        result, slots = tick(None, _sample(cpu=0.97), 0.0)
        assert slots == 0 and breaker_holds_pool(instance)
        published = read_published_protection(instance)
        assert published.state is CircuitState.OPEN and published.since == 0.0
        observation = result.asset_events[0]
        assert observation.asset_key == HEALTH_KEY
        assert observation.metadata["breaker_state"].value == "OPEN"
        assert observation.metadata[PROTECTION_METADATA_KEY].value == published.to_dict()
        assert "breaker OPEN" in result.skip_reason.skip_message
        quiet, slots = tick(result.cursor, _sample(cpu=0.97), 5.0)
        assert not quiet.asset_events and slots == 0
        result, slots = tick(result.cursor, _sample(), 10.0)
        assert slots == 1
        result, slots = tick(result.cursor, _sample(), 30.0)
        assert slots == 2 and not breaker_holds_pool(instance)


def test_the_client_reads_the_published_state_through_dagster_graphql() -> None:
    """The client's query, run by Dagster's own GraphQL layer over the observation the sensor
    records, gives the state the sensor published in the key-value store."""
    settings = ResourceMonitorSettings(execution_mode="CONCURRENT")
    with instance_for_test(overrides=POOLS) as instance, WorkspaceProcessContext(
            instance, EmptyWorkspaceTarget()) as workspace:
        def client_view() -> str:
            answer = execute_dagster_graphql(workspace.create_request_context(), BREAKER_QUERY)
            assert not answer.errors, answer.errors
            return breaker_state_from(answer.data)

        assert client_view() == "CLOSED"  # nothing recorded yet
        result = evaluate(build_sensor_context(instance=instance), settings,
                          _sample(memory=0.99), 0.0)
        for event in result.asset_events:
            instance.report_runless_asset_event(event)
        assert client_view() == read_published_protection(instance).state.value == "OPEN"
