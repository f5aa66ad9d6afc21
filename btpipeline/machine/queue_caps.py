"""Backpressure: how many runs of each priority may wait in the queue at once.

A submission over its priority's cap is refused (by the client before anything is sent; by
the ``queue_policy`` sensor for runs that reached the queue another way, e.g. from the UI,
which cancels the newest excess runs with a message saying why). Nothing is dropped silently.

Caps come from ``BTPIPELINE_QUEUE_CAP_<PRIORITY>`` (e.g. ``BTPIPELINE_QUEUE_CAP_BULK=500``),
else the defaults below: urgent work is rare by nature, bulk backfills may queue deep.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping

from btpipeline.errors import BtPipelineError, InvalidParameterError
from btpipeline.machine.priority import JobPriority

ENV_PREFIX = "BTPIPELINE_QUEUE_CAP_"
DEFAULT_CAPS: dict[JobPriority, int] = {
    JobPriority.CRITICAL: 10,
    JobPriority.HIGH: 25,
    JobPriority.NORMAL: 100,
    JobPriority.LOW: 250,
    JobPriority.BULK: 1000,
}


class QueueFullError(BtPipelineError, RuntimeError):
    """The queue already holds as many runs of this priority as its cap allows."""

    def __init__(self, priority: JobPriority, queued: int, cap: int) -> None:
        super().__init__(
            f"The run queue is full for {priority.name} work: {queued} {priority.name} run(s) "
            f"queued, cap {cap}. Nothing was submitted. Fix: wait for queued runs to start, "
            f"submit at another priority, or raise {ENV_PREFIX}{priority.name}.")
        self.priority, self.queued, self.cap = priority, queued, cap


def queue_caps(environ: Mapping[str, str] | None = None) -> dict[JobPriority, int]:
    """The cap per priority, env overrides applied; a bad value names the variable."""
    environ = os.environ if environ is None else environ
    caps = dict(DEFAULT_CAPS)
    for priority in JobPriority:
        raw = environ.get(ENV_PREFIX + priority.name)
        if raw is None:
            continue
        try:
            value = int(raw)
        except ValueError:
            value = -1
        if value < 0:
            raise InvalidParameterError(
                f"{ENV_PREFIX}{priority.name}={raw!r} is not a cap. Fix: set it to a whole "
                "number >= 0 (0 refuses every run of that priority) or unset it.")
        caps[priority] = value
    return caps


def check_room(priority: JobPriority, queued: Iterable[JobPriority],
               caps: Mapping[JobPriority, int], adding: int = 1) -> None:
    """Raise :class:`QueueFullError` unless ``adding`` more runs of ``priority`` fit."""
    count = Counter(queued)[priority]
    if count + adding > caps[priority]:
        raise QueueFullError(priority, count, caps[priority])


def over_cap(queued: list[tuple[str, JobPriority, float]],
             caps: Mapping[JobPriority, int]) -> list[tuple[str, JobPriority, int]]:
    """``(run_id, priority, cap)`` of the runs beyond their priority's cap, newest first
    refused: ``queued`` holds ``(run_id, priority, queued_at)``."""
    excess = []
    for priority in JobPriority:
        runs = sorted((r for r in queued if r[1] is priority), key=lambda r: r[2])
        excess += [(run_id, priority, caps[priority]) for run_id, _, _ in runs[caps[priority]:]]
    return excess
