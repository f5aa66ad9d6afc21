"""Run priority: one enum mapped to Dagster's ``dagster/priority`` and to worker scheduling.

==========  ================  =====  ===============  ==========================================
priority    dagster/priority  nice   Linux policy     meaning
==========  ================  =====  ===============  ==========================================
CRITICAL    20                0      SCHED_OTHER      needed now (a fix the live desk waits on)
HIGH        10                0      SCHED_OTHER      interactive research runs
NORMAL      0                 5      SCHED_OTHER      default: slightly below the scanner
LOW         -10               10     SCHED_BATCH      scheduled re-runs; batch class, nice 10
BULK        -20               19     SCHED_IDLE       backfills: run only on otherwise idle CPU
==========  ================  =====  ===============  ==========================================

Nice and the scheduling class protect the live scanner far better than pinning on this VM
(see benchmarks/scanner_latency.md). Lowering a process's priority is always allowed; if the
kernel refuses a policy the worker keeps the default and the executor logs a warning.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from btpipeline.errors import InvalidParameterError
from btpipeline.machine.tags import DAGSTER_PRIORITY_TAG, PREEMPTIBLE_TAG, RUN_PRIORITY_TAG


class SchedPolicy(enum.Enum):
    """Linux CPU scheduling class for a worker process."""

    OTHER = "other"
    BATCH = "batch"
    IDLE = "idle"


class JobPriority(enum.Enum):
    """Priority of a backtest run; the value is its ``dagster/priority`` tag value."""

    CRITICAL = 20
    HIGH = 10
    NORMAL = 0
    LOW = -10
    BULK = -20

    @property
    def dagster_priority(self) -> int:
        return int(self.value)

    @property
    def nice(self) -> int:
        return _NICE[self]

    @property
    def sched_policy(self) -> SchedPolicy:
        return _POLICY[self]

    @classmethod
    def from_dagster_priority(cls, value: int) -> JobPriority:
        """The enum member for an integer ``dagster/priority`` (rounded towards NORMAL)."""
        if value >= cls.CRITICAL.value:
            return cls.CRITICAL
        if value >= cls.HIGH.value:
            return cls.HIGH
        if value > cls.LOW.value:
            return cls.NORMAL
        if value > cls.BULK.value:
            return cls.LOW
        return cls.BULK


_NICE = {
    JobPriority.CRITICAL: 0,
    JobPriority.HIGH: 0,
    JobPriority.NORMAL: 5,
    JobPriority.LOW: 10,
    JobPriority.BULK: 19,
}
_POLICY = {
    JobPriority.CRITICAL: SchedPolicy.OTHER,
    JobPriority.HIGH: SchedPolicy.OTHER,
    JobPriority.NORMAL: SchedPolicy.OTHER,
    JobPriority.LOW: SchedPolicy.BATCH,
    JobPriority.BULK: SchedPolicy.IDLE,
}


def priority_from_tags(tags: Mapping[str, str], *, strict: bool = False) -> JobPriority:
    """The run's priority: ``btpipeline/priority`` (a name) first, then ``dagster/priority``.

    Readers (sensors, the client) fall back to NORMAL on unparseable values; the executor
    passes ``strict`` so that a run tagged with an unknown name (``URGENT``) fails at its start
    with the names it accepts instead of silently running as NORMAL.
    """
    name = tags.get(RUN_PRIORITY_TAG)
    if name:
        try:
            return JobPriority[name.strip().upper()]
        except KeyError:
            if strict:
                raise InvalidParameterError(
                    f"Run tag {RUN_PRIORITY_TAG}={name!r} is not a priority; expected one of "
                    f"{', '.join(p.name for p in JobPriority)}. Fix: re-launch the run with "
                    "one of those names (or drop the tag for NORMAL).") from None
    raw = tags.get(DAGSTER_PRIORITY_TAG)
    if raw is not None:
        try:
            return JobPriority.from_dagster_priority(int(raw))
        except ValueError:
            pass
    return JobPriority.NORMAL


def priority_tags(priority: JobPriority) -> dict[str, str]:
    """Run tags that give a run ``priority`` for the executor, the run queue and pool claims
    (and mark LOW / BULK runs preemptible, see ``PREEMPTIBLE_TAG``)."""
    return {RUN_PRIORITY_TAG: priority.name, DAGSTER_PRIORITY_TAG: str(priority.dagster_priority),
            PREEMPTIBLE_TAG: "true" if priority.value < JobPriority.NORMAL.value else "false"}


def step_priority(tags: Mapping[str, str]) -> int:
    """A step's ``dagster/priority`` op tag as an int (0 when absent or not an integer)."""
    try:
        return int(tags.get(DAGSTER_PRIORITY_TAG, 0))
    except (TypeError, ValueError):
        return 0
