"""The resource_monitor sensor throttles the backtest pool through Dagster's own concurrency
slots: OPEN closes the pool, HALF_OPEN gives one slot, CLOSED restores it (a real test instance,
ticks built with build_sensor_context). The breaker's rules: tests/unit/test_circuit_breaker.py."""

from dagster import build_sensor_context, instance_for_test

from btpipeline.monitor.queue_control import breaker_holds_pool
from btpipeline.monitor.sampler import ResourceSample
from btpipeline.monitor.settings import ResourceMonitorSettings
from btpipeline.sensors.resource_monitor import HEALTH_KEY, evaluate

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
        assert result.asset_events[0].asset_key == HEALTH_KEY
        assert result.asset_events[0].metadata["breaker_state"].value == "OPEN"
        assert "breaker OPEN" in result.skip_reason.skip_message
        quiet, slots = tick(result.cursor, _sample(cpu=0.97), 5.0)
        assert not quiet.asset_events and slots == 0
        result, slots = tick(result.cursor, _sample(), 10.0)
        assert slots == 1
        result, slots = tick(result.cursor, _sample(), 30.0)
        assert slots == 2 and not breaker_holds_pool(instance)

