"""Backpressure: how many runs of each priority may wait in the queue at once.

A submission over its priority's cap is refused (by the client before anything is sent; by
the ``queue_policy`` sensor for runs that reached the queue another way, e.g. from the UI,
which cancels the newest excess runs with a message saying why). Nothing is dropped silently.

Caps come from ``BTPIPELINE_QUEUE_CAP_<PRIORITY>`` (e.g. ``BTPIPELINE_QUEUE_CAP_BULK=500``),
else the defaults below: urgent work is rare by nature, bulk backfills may queue deep.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from pydantic import Field

from btpipeline.errors import QueueFullError
from btpipeline.machine.priority import JobPriority
from btpipeline.machine.settings import SettingsModel, env_var


class QueueCapSettings(SettingsModel):
    """How many runs of each priority may wait at once (``BTPIPELINE_QUEUE_CAP_<PRIORITY>``)."""

    queue_cap_critical: int = Field(default=10, ge=0, description="Queued CRITICAL runs.")
    queue_cap_high: int = Field(default=25, ge=0, description="Queued HIGH runs.")
    queue_cap_normal: int = Field(default=100, ge=0, description="Queued NORMAL runs.")
    queue_cap_low: int = Field(default=250, ge=0, description="Queued LOW runs.")
    queue_cap_bulk: int = Field(
        default=1000, ge=0, description="Queued BULK runs (0 refuses every run of a priority).")

    def caps(self) -> dict[JobPriority, int]:
        return {priority: getattr(self, cap_field(priority)) for priority in JobPriority}


def cap_field(priority: JobPriority) -> str:
    return f"queue_cap_{priority.name.lower()}"


def queue_caps(environ: Mapping[str, str] | None = None) -> dict[JobPriority, int]:
    """The cap per priority, env overrides applied; a bad value names the variable."""
    return QueueCapSettings.from_env(environ=environ).caps()


def check_room(priority: JobPriority, queued: Iterable[JobPriority],
               caps: Mapping[JobPriority, int], adding: int = 1) -> None:
    """Raise :class:`QueueFullError` unless ``adding`` more runs of ``priority`` fit."""
    count = Counter(queued)[priority]
    if count + adding > caps[priority]:
        raise QueueFullError(priority.name, count, caps[priority], env_var(cap_field(priority)))


def over_cap(queued: list[tuple[str, JobPriority, float]],
             caps: Mapping[JobPriority, int]) -> list[tuple[str, JobPriority, int]]:
    """``(run_id, priority, cap)`` of the runs beyond their priority's cap, newest first
    refused: ``queued`` holds ``(run_id, priority, queued_at)``."""
    excess = []
    for priority in JobPriority:
        runs = sorted((r for r in queued if r[1] is priority), key=lambda r: r[2])
        excess += [(run_id, priority, caps[priority]) for run_id, _, _ in runs[caps[priority]:]]
    return excess
