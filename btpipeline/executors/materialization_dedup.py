"""Exactly-once materialization records across a step's retries.

A worker killed while it records a step's per-partition materializations leaves some of them
in the event log; the retried attempt computes the same partitions and would record them all
again. Before a retried step runs, the worker reads what this run already recorded for the
step and lets its instance skip those events (``should_store_event``). Partitions are recorded
in the same order on every attempt, so the skipped ones are a prefix and a batch's closing
event is never among them unless the batch is empty.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from dagster import DagsterEventType, DagsterInstance

Key = tuple[str | None, str, str | None]  # step key, asset key, partition


def _key_of(entry: Any) -> Key | None:
    event = entry.dagster_event
    if event is None or event.event_type != DagsterEventType.ASSET_MATERIALIZATION:
        return None
    materialization = event.step_materialization_data.materialization
    return (event.step_key, materialization.asset_key.to_user_string(),
            materialization.partition)


def recorded_materializations(instance: DagsterInstance, run_id: str,
                              step_keys: Sequence[str]) -> set[Key]:
    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
    keys = {_key_of(record.event_log_entry) for record in records}
    return {key for key in keys if key is not None and key[0] in step_keys}


def skip_recorded(instance: DagsterInstance, recorded: set[Key]) -> Callable[[], None]:
    """Make ``instance`` drop materialization events in ``recorded``; returns the undo."""
    original = instance.should_store_event

    def should_store(entry: Any) -> bool:
        key = _key_of(entry)
        if key is not None and key in recorded:
            recorded.discard(key)  # once: a later attempt's own records are kept
            return False
        return original(entry)

    instance.should_store_event = should_store  # type: ignore[method-assign,assignment]

    def undo() -> None:
        instance.should_store_event = original  # type: ignore[method-assign]

    return undo


def is_retry(known_state: Any, step_keys: Sequence[str]) -> bool:
    """Whether any of ``step_keys`` has failed an earlier attempt in this run."""
    retry_state = known_state.get_retry_state() if known_state is not None else None
    if not retry_state:
        return False
    return any(retry_state.get_attempt_count(k) > 0 for k in step_keys)
