"""One tick of the resource monitor sensor: the circuit breaker that pauses backtests to protect
the live scanner. Each tick samples the machine and steps the one protection state machine
(:mod:`btpipeline.machine.protection_state`; its state lives in the cursor). On a transition it
sets the backtest pool's slots, publishes the state in the instance's key-value store and records
the same state, with the figures, as a ``machine_health`` observation (the UI's and the GraphQL
client's view of it). Between transitions it records one every ``FIGURES_EVERY_SECONDS`` too, so
the client's ``get_execution_stats`` shows the server's current figures. Every tick's message
says the state and the figures. The sensor itself is in ``sensors.py``.
"""

from dagster import (
    AssetObservation,
    MetadataValue,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
)

from btpipeline.assets.keys import HEALTH_KEY
from btpipeline.machine.protection_state import ProtectionState
from btpipeline.monitor.breaker import step_breaker
from btpipeline.monitor.queue_control import apply_protection
from btpipeline.monitor.sampler import ResourceSample
from btpipeline.monitor.settings import ResourceMonitorSettings

#: The observation's metadata key holding the published state's JSON (read by the client).
PROTECTION_METADATA_KEY = "protection"
#: Longest time between two ``machine_health`` observations while the breaker state holds.
FIGURES_EVERY_SECONDS = 60.0


def _figures(sample: ResourceSample) -> str:
    return ", ".join(f"{k} {v:.3g}" for k, v in sample.as_metadata().items())


def health_observation(state: ProtectionState, sample: ResourceSample,
                       slots: int) -> AssetObservation:
    """The published ``state`` as the UI's and client's record, with the figures."""
    return AssetObservation(asset_key=HEALTH_KEY, metadata={
        **sample.as_metadata(), "breaker_state": state.state.value, "reason": state.reason,
        "backtest_pool_slots": slots,
        PROTECTION_METADATA_KEY: MetadataValue.json(state.to_dict())})


def evaluate(context: SensorEvaluationContext, settings: ResourceMonitorSettings,
             sample: ResourceSample, now: float) -> SensorResult:
    """One tick, given a sample (split out so tests can feed samples)."""
    before = ProtectionState.from_json(context.cursor)
    after = step_breaker(before, sample, now, settings.levels())
    message = f"breaker {after.state.value}: {_figures(sample)}"
    if (after.state, after.since) == (before.state, before.since):
        return SensorResult(skip_reason=SkipReason(message), cursor=after.to_json())
    slots = apply_protection(context.instance, after, settings.backtest_pool,
                             settings.normal_pool_limit)
    context.log.warning(f"breaker {before.state.value} -> {after.state.value} ({after.reason}); "
                        f"pool {settings.backtest_pool!r} now {slots} slot(s)")
    return SensorResult(skip_reason=SkipReason(f"{message} (was {before.state.value}; "
                                               f"pool slots {slots})"),
                        asset_events=[health_observation(after, sample, slots)],
                        cursor=after.to_json())



def with_current_figures(context: SensorEvaluationContext, settings: ResourceMonitorSettings,
                         result: SensorResult, sample: ResourceSample,
                         wall_now: float) -> SensorResult:
    """``result``, plus a ``machine_health`` observation of the unchanged state when none was
    recorded for ``FIGURES_EVERY_SECONDS`` (``wall_now``: Unix seconds)."""
    if result.asset_events:
        return result
    latest = context.instance.fetch_observations(HEALTH_KEY, limit=1).records
    if latest and wall_now - latest[0].timestamp < FIGURES_EVERY_SECONDS:
        return result
    state = ProtectionState.from_json(result.cursor)
    info = context.instance.event_log_storage.get_concurrency_info(settings.backtest_pool)
    return SensorResult(skip_reason=result.skip_reason, cursor=result.cursor,
                        asset_events=[health_observation(state, sample, info.slot_count)])
