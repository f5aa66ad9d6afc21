"""What the scanner does to protect itself at start: nice -10 and the reserved cores.

With Linux's autogroup on (``kernel.sched_autogroup_enabled=1``, the default of most
distributions) CPU time is shared between sessions first, and a process's nice only ranks it
within its own session: a scanner at nice -10 still gets just an equal share against a busy
session elsewhere. So when the scanner leads its own session (a systemd service, ``setsid
btpipeline scanner``) it also sets its session's autogroup nice to the same value, as the
backtest workers do with theirs (nice 5). Started from a shell it shares that shell's session:
it leaves that session's autogroup alone (raising it would raise everything started from the
terminal) and says how to give it its own.

It uses the machine layer's isolation back-ends (``btpipeline.machine.isolation``) and the
executor's core split (``btpipeline.machine.cores``), so the scanner pins itself to exactly the
cores the executor keeps its workers off (``BTPIPELINE_SCANNER_CORES`` /
``BTPIPELINE_LIVE_SCANNER_CPU_RESERVE`` move both). A refusal is reported, never fatal.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from btpipeline.machine.cores import scanner_reserved_cores
from btpipeline.machine.executor_settings import ExecutorSettings
from btpipeline.machine.isolation import AutogroupNice, CpuAffinity, NiceLevel, autogroup_enabled

DEFAULT_NICE = -10


@dataclasses.dataclass(frozen=True)
class IsolationReport:
    """What was asked, what the process now runs with, and what the kernel refused (why)."""

    requested_nice: int | None
    requested_cores: tuple[int, ...]
    cores_source: str
    nice: int
    cores: tuple[int, ...]
    refused: tuple[str, ...]
    notes: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"nice": self.nice, "cores": list(self.cores),
                "requested_nice": self.requested_nice,
                "requested_cores": list(self.requested_cores),
                "refused": list(self.refused)}

    def describe(self) -> str:
        applied = []
        if self.requested_nice is not None and self.nice == self.requested_nice:
            applied.append(f"nice {self.nice}")
        if self.requested_cores and set(self.cores) == set(self.requested_cores):
            applied.append(f"pinned to cores {list(self.cores)} ({self.cores_source})")
        text = f"isolation applied: {', '.join(applied) or 'nothing'}"
        text += f"; refused: {'; '.join(self.refused) or 'nothing'}"
        return text + "".join(f"; note: {n}" for n in self.notes)


def reserved_cores() -> tuple[tuple[int, ...], str]:
    """The executor's scanner reserve on this machine, and where it came from."""
    available = sorted(os.sched_getaffinity(0))
    cores = scanner_reserved_cores(ExecutorSettings.from_env({}), available)
    return cores, "backtest_executor's scanner reserve"


def apply_scanner_isolation(nice: int | None = DEFAULT_NICE,
                            cores: tuple[int, ...] | None = None) -> IsolationReport:
    """Set ``nice`` and pin to ``cores`` (None: the executor's reserve; empty: no pinning)."""
    source = "--cores"
    if cores is None:
        cores, source = reserved_cores()
    refused: list[str] = []
    if cores:
        problem = CpuAffinity(tuple(cores)).apply()
        if problem:
            refused.append(problem + _allowed_hint())
    if nice is not None:
        problem = NiceLevel(nice).apply()
        if problem:
            refused.append(problem + _privilege_hint())
        elif leads_its_session() and (problem := AutogroupNice(nice).apply()):
            refused.append(problem + _privilege_hint())
    return IsolationReport(
        requested_nice=nice, requested_cores=tuple(cores), cores_source=source,
        nice=os.getpriority(os.PRIO_PROCESS, 0), cores=tuple(sorted(os.sched_getaffinity(0))),
        refused=tuple(refused), notes=_notes(cores))


def leads_its_session() -> bool:
    """True when this process is its session's leader (its autogroup is its own)."""
    return os.getsid(0) == os.getpid()


def _privilege_hint() -> str:
    if os.geteuid() != 0:
        return (" (not root: a negative nice needs root or CAP_SYS_NICE; run the scanner as "
                "root, grant CAP_SYS_NICE, or raise RLIMIT_NICE)")
    return ""


def _allowed_hint() -> str:
    return f" (this process may use cores {sorted(os.sched_getaffinity(0))}; pass --cores)"


def _notes(cores: tuple[int, ...]) -> tuple[str, ...]:
    notes = []
    if not cores:
        notes.append("no core reserved for the scanner on this machine (one core, or a zero "
                     "reserve): not pinned")
    if autogroup_enabled() and not leads_its_session():
        notes.append("autogroup is on and the scanner shares its session with the shell that "
                     "started it: its nice ranks it only within that session; start it in its "
                     "own session (setsid btpipeline scanner ..., or a systemd service) so that "
                     "its session's autogroup gets the same nice")
    return tuple(notes)
