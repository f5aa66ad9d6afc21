"""What the breaker does to Dagster: sets the backtest pool's slots, and publishes its state.

OPEN sets the ``backtests`` concurrency pool to 0 slots: Dagster's run queue then keeps
queued backtest runs queued (``block_op_concurrency_limited_runs`` is on by default) and a
running run's next backtest step waits for a slot. HALF_OPEN gives one slot, CLOSED restores
the normal limit.

The state is published in the instance's key-value store (:data:`PROTECTION_KV_KEY`), the one
record every reader uses (see :mod:`btpipeline.machine.protection`): the executors' load
guards pause running work while it is OPEN, the executor does not raise the pool limit while
the breaker holds it (``breaker_holds_pool``), ``btpipeline status`` shows it.
"""

from __future__ import annotations

from dagster import DagsterInstance

from btpipeline.executors.dagster_internals import set_pool_limit
from btpipeline.machine.protection_state import CircuitState, ProtectionState

PROTECTION_KV_KEY = "btpipeline/breaker"


def pool_slots_for(state: CircuitState, normal_limit: int) -> int:
    return {CircuitState.OPEN: 0, CircuitState.HALF_OPEN: min(1, normal_limit),
            CircuitState.CLOSED: normal_limit}[state]


def apply_protection(instance: DagsterInstance, state: ProtectionState, pool: str,
                     normal_limit: int) -> int:
    """Set the pool for ``state`` and publish ``state``; returns the slots set."""
    slots = pool_slots_for(state.state, normal_limit)
    set_pool_limit(instance, pool, slots)
    publish_protection(instance, state)
    return slots


def publish_protection(instance: DagsterInstance, state: ProtectionState) -> None:
    instance.run_storage.set_cursor_values({PROTECTION_KV_KEY: state.to_json()})


def read_published_protection(instance: DagsterInstance) -> ProtectionState:
    """The breaker's published state (CLOSED when it has published none)."""
    values = instance.run_storage.get_cursor_values({PROTECTION_KV_KEY})
    return ProtectionState.from_json(values.get(PROTECTION_KV_KEY))


def breaker_holds_pool(instance: DagsterInstance) -> bool:
    """True while an OPEN or HALF_OPEN breaker owns the backtest pool's limit."""
    return read_published_protection(instance).state is not CircuitState.CLOSED
