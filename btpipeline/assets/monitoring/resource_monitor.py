"""One tick of the resource monitor sensor: the circuit breaker that pauses backtests to protect
the live scanner. Each tick samples the machine, steps the breaker (its state lives in the
cursor) and, on a transition, sets the backtest pool's slots and records a ``machine_health``
observation with the figures. Every tick's message says the state and the figures.
"""

from dagster import AssetObservation, SensorEvaluationContext, SensorResult, SkipReason

from btpipeline.assets.keys import HEALTH_KEY
from btpipeline.monitor.breaker import Breaker
from btpipeline.monitor.queue_control import apply_breaker
from btpipeline.monitor.sampler import ResourceSample
from btpipeline.monitor.settings import ResourceMonitorSettings


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

