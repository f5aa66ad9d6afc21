"""The resource monitor sensor: the circuit breaker that pauses backtests to protect the
live scanner. Each tick samples the machine, steps the breaker (its state lives in the cursor)
and, on a transition, sets the backtest pool's slots and records a ``machine_health``
observation with the figures. Every tick's message says the state and the figures.
"""

import time

from dagster import (
    AssetKey,
    AssetObservation,
    AssetSpec,
    DefaultSensorStatus,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from btpipeline.monitor.breaker import Breaker
from btpipeline.monitor.queue_control import apply_breaker
from btpipeline.monitor.sampler import ResourceSample, sample_resources
from btpipeline.monitor.settings import ResourceMonitorSettings

HEALTH_KEY = AssetKey(["machine_health"])
machine_health = AssetSpec(
    HEALTH_KEY, group_name="monitor",
    description="Observations of CPU, memory, pressure stall and scanner latency, recorded by "
    "resource_monitor at every circuit-breaker transition.")


def _figures(sample: ResourceSample) -> str:
    return ", ".join(f"{k} {v:.3g}" for k, v in sample.as_metadata().items())


def evaluate(context: SensorEvaluationContext, settings: ResourceMonitorSettings,
             sample: ResourceSample, now: float) -> SensorResult:
    """One tick, given a sample (split out so tests can feed samples)."""
    before = Breaker.from_json(context.cursor)
    after = before.step(sample, now, settings.thresholds())
    message = f"breaker {after.state.value}: {_figures(sample)}"
    if after == before:
        return SensorResult(skip_reason=SkipReason(message), cursor=after.to_json())
    slots = apply_breaker(context.instance, after, settings.backtest_pool,
                          settings.normal_pool_limit)
    context.log.warning(f"breaker {before.state.value} -> {after.state.value} ({after.reason}); "
                        f"pool {settings.backtest_pool!r} now {slots} slot(s)")
    observation = AssetObservation(asset_key=HEALTH_KEY, metadata={
        **sample.as_metadata(), "breaker_state": after.state.value, "reason": after.reason,
        "backtest_pool_slots": slots})
    return SensorResult(skip_reason=SkipReason(f"{message} (was {before.state.value}; "
                                               f"pool slots {slots})"),
                        asset_events=[observation], cursor=after.to_json())


def make_resource_monitor_sensor() -> SensorDefinition:
    @sensor(name="resource_monitor", minimum_interval_seconds=5,
            default_status=DefaultSensorStatus.STOPPED, asset_selection=[HEALTH_KEY],
            description="Circuit breaker: pauses the backtest pool when the machine or the live "
            "scanner is overloaded (CLOSED / OPEN / HALF_OPEN).")
    def resource_monitor(context: SensorEvaluationContext,
                         monitor_settings: ResourceMonitorSettings) -> SensorResult:
        sample = sample_resources(monitor_settings.status_path(), cpu_interval=0.5)
        return evaluate(context, monitor_settings, sample, time.time())

    return resource_monitor
