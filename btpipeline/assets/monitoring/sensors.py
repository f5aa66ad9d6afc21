"""The monitoring sensors: ``resource_monitor`` (the circuit breaker that protects the live
scanner) and ``queue_policy`` (backpressure caps and deadlines on the run queue). What one tick
does lives in ``resource_monitor.py`` and ``queue_policy.py``, where tests feed it directly."""

import time

from dagster import (
    DefaultSensorStatus,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from btpipeline.assets.keys import HEALTH_KEY
from btpipeline.assets.monitoring import queue_policy, resource_monitor
from btpipeline.monitor.sampler import sample_resources
from btpipeline.monitor.settings import ResourceMonitorSettings


def make_resource_monitor_sensor() -> SensorDefinition:
    @sensor(name="resource_monitor", minimum_interval_seconds=5,
            default_status=DefaultSensorStatus.STOPPED, asset_selection=[HEALTH_KEY],
            description="Circuit breaker: pauses the backtest pool when the machine or the live "
            "scanner is overloaded (CLOSED / OPEN / HALF_OPEN).")
    def resource_monitor_sensor(context: SensorEvaluationContext,
                                monitor_settings: ResourceMonitorSettings) -> SensorResult:
        sample = sample_resources(monitor_settings.status_path(), cpu_interval=0.5)
        now = time.time()
        result = resource_monitor.evaluate(context, monitor_settings, sample, now)
        return resource_monitor.with_current_figures(context, monitor_settings, result, sample,
                                                     now)

    return resource_monitor_sensor


def make_queue_policy_sensor() -> SensorDefinition:
    @sensor(name="queue_policy", minimum_interval_seconds=10,
            default_status=DefaultSensorStatus.RUNNING,
            description="Backpressure and deadlines: cancels queued runs over their priority's "
            "cap (with a message) and raises / flags runs by their btpipeline/deadline tag.")
    def queue_policy_sensor(context: SensorEvaluationContext) -> SkipReason:
        return SkipReason(queue_policy.evaluate(context.instance, time.time()))

    return queue_policy_sensor
