"""What the breaker does to Dagster: sets the backtest pool's slots, and remembers its state.

OPEN sets the ``backtests`` concurrency pool to 0 slots: Dagster's run queue then keeps
queued backtest runs queued (``block_op_concurrency_limited_runs`` is on by default) and a
running run's next backtest step waits for a slot. HALF_OPEN gives one slot, CLOSED restores
the normal limit. The state is also kept in the instance's key-value store, so the executor
does not raise the pool limit again while the breaker holds it (``breaker_holds_pool``).
"""

from __future__ import annotations

from dagster import DagsterInstance

from btpipeline.executors.dagster_internals import set_pool_limit
from btpipeline.monitor.breaker import Breaker, BreakerState

BREAKER_KV_KEY = "btpipeline/breaker"


def pool_slots_for(state: BreakerState, normal_limit: int) -> int:
    return {BreakerState.OPEN: 0, BreakerState.HALF_OPEN: min(1, normal_limit),
            BreakerState.CLOSED: normal_limit}[state]


def apply_breaker(instance: DagsterInstance, breaker: Breaker, pool: str,
                  normal_limit: int) -> int:
    """Set the pool for ``breaker``'s state and publish the state; returns the slots set."""
    slots = pool_slots_for(breaker.state, normal_limit)
    set_pool_limit(instance, pool, slots)
    instance.run_storage.set_cursor_values({BREAKER_KV_KEY: breaker.to_json()})
    return slots


def published_breaker(instance: DagsterInstance) -> Breaker:
    values = instance.run_storage.get_cursor_values({BREAKER_KV_KEY})
    return Breaker.from_json(values.get(BREAKER_KV_KEY))


def breaker_holds_pool(instance: DagsterInstance) -> bool:
    """True while an OPEN or HALF_OPEN breaker owns the backtest pool's limit."""
    return published_breaker(instance).state is not BreakerState.CLOSED
