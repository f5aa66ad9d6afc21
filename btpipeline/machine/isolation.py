"""Linux isolation back-ends applied by each worker to itself when it starts.

Each back-end is a small class with ``apply() -> str | None`` (a warning when the kernel
refused; the worker then runs without it). They run in the worker, before it reports ready,
so a step never runs unisolated. Add a back-end (e.g. a cgroup v1 ``cpu.idle`` group) by
writing another class and listing it in :func:`backends_for`.
"""

from __future__ import annotations

import dataclasses
import os
import resource
from pathlib import Path
from typing import Protocol

from btpipeline.machine.priority import SchedPolicy

_POLICY_IDS = {
    SchedPolicy.OTHER: getattr(os, "SCHED_OTHER", 0),
    SchedPolicy.BATCH: getattr(os, "SCHED_BATCH", 3),
    SchedPolicy.IDLE: getattr(os, "SCHED_IDLE", 5),
}


@dataclasses.dataclass(frozen=True)
class IsolationSpec:
    """What one worker should apply to itself (None: leave as inherited)."""

    cores: tuple[int, ...] | None = None
    nice: int | None = None
    sched_policy: SchedPolicy | None = None
    rlimit_as_mb: int = 0


class IsolationBackend(Protocol):
    @property
    def name(self) -> str: ...

    def apply(self) -> str | None: ...


@dataclasses.dataclass(frozen=True)
class CpuAffinity:
    cores: tuple[int, ...]
    name: str = "affinity"

    def apply(self) -> str | None:
        try:
            os.sched_setaffinity(0, self.cores)
        except OSError as exc:
            return f"could not pin to cores {list(self.cores)}: {exc}"
        return None


@dataclasses.dataclass(frozen=True)
class SchedulingClass:
    policy: SchedPolicy
    name: str = "sched_policy"

    def apply(self) -> str | None:
        try:
            os.sched_setscheduler(0, _POLICY_IDS[self.policy], os.sched_param(0))
        except (OSError, AttributeError) as exc:
            return f"could not set scheduling class {self.policy.name}: {exc}"
        return None


@dataclasses.dataclass(frozen=True)
class NiceLevel:
    nice: int
    name: str = "nice"

    def apply(self) -> str | None:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, self.nice)
        except OSError as exc:
            return f"could not set nice {self.nice}: {exc}"
        return None


AUTOGROUP_SWITCH = Path("/proc/sys/kernel/sched_autogroup_enabled")
AUTOGROUP_SELF = Path("/proc/self/autogroup")


def autogroup_enabled() -> bool:
    """Linux's autogroup: CPU time is shared between sessions first, so nice only ranks
    processes of one session against each other."""
    try:
        return AUTOGROUP_SWITCH.read_text().strip() == "1"
    except OSError:
        return False


@dataclasses.dataclass(frozen=True)
class AutogroupNice:
    """The nice of the worker's own autogroup (it starts its own session, see worker_main):
    without it a worker at nice 5 in a daemon-launched run's session competes with the
    scanner's session as an equal, whatever the two processes' nice values."""

    nice: int
    name: str = "autogroup_nice"

    def apply(self) -> str | None:
        if not autogroup_enabled():
            return None
        try:
            AUTOGROUP_SELF.write_text(str(self.nice))
        except OSError as exc:
            return f"could not set the autogroup's nice to {self.nice}: {exc}"
        return None


@dataclasses.dataclass(frozen=True)
class AddressSpaceLimit:
    limit_mb: int
    name: str = "rlimit_as"

    def apply(self) -> str | None:
        limit = self.limit_mb * 1024 * 1024
        try:
            hard = resource.getrlimit(resource.RLIMIT_AS)[1]
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        except (OSError, ValueError) as exc:
            return f"could not set RLIMIT_AS to {self.limit_mb} MiB: {exc}"
        return None


def backends_for(spec: IsolationSpec) -> list[IsolationBackend]:
    """The back-ends ``spec`` asks for, in the order they are applied."""
    backends: list[IsolationBackend] = []
    if spec.cores:
        backends.append(CpuAffinity(spec.cores))
    if spec.sched_policy is not None:
        backends.append(SchedulingClass(spec.sched_policy))
    if spec.nice is not None:
        backends.append(NiceLevel(spec.nice))
        backends.append(AutogroupNice(spec.nice))
    if spec.rlimit_as_mb:
        backends.append(AddressSpaceLimit(spec.rlimit_as_mb))
    return backends


def apply_isolation(spec: IsolationSpec) -> list[str]:
    """Apply every back-end to the calling process; returns the warnings of those refused."""
    return [w for w in (backend.apply() for backend in backends_for(spec)) if w]


def current_isolation() -> dict[str, object]:
    """What the calling process runs with: cores, nice, scheduling class (for tests/logs)."""
    policy = os.sched_getscheduler(0)
    names = {v: k.name for k, v in _POLICY_IDS.items()}
    return {
        "cores": sorted(os.sched_getaffinity(0)),
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "sched_policy": names.get(policy, str(policy)),
        "autogroup_nice": _autogroup_nice(),
    }


def _autogroup_nice() -> int | None:
    """The nice of this process's autogroup (``/autogroup-<id> nice <n>``), None without."""
    try:
        return int(AUTOGROUP_SELF.read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return None
