"""The per-tick CSV of ``btpipeline scanner --latency-log``, and where each tick's time went.

Besides the latency and its scan / write parts, each line says how late the loop woke
(``wake_ms``: wake-up minus the scheduled time) and, from the kernel's per-thread
``/proc/thread-self/schedstat``, how long the tick's thread ran on a CPU (``cpu_ms``) and how
long it sat runnable on a run queue waiting for one (``runq_ms``) between waking and the
tick's end. ``latency - wake - cpu - runq`` is then time the tick was blocked (I/O, a lock, a
page fault). The kernel brings a running thread's counters up to date at its scheduler ticks
and context switches, so one tick's figures can be off by up to a jiffy (1-10 ms; 4 ms on a
250 Hz kernel): read them summed over many ticks. Reading the file is one ``pread`` on a
kept-open descriptor (~1-2 µs), twice a tick, and only while a latency log is written. Where
the kernel has no schedstat the two columns are empty.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TextIO

HEADER = "tick,tick_unix,latency_ms,scan_ms,write_ms,wake_ms,cpu_ms,runq_ms"
SCHEDSTAT = "/proc/thread-self/schedstat"


@dataclasses.dataclass(frozen=True)
class SchedSample:
    """A thread's cumulative time on a CPU and waiting on a run queue, in nanoseconds."""

    on_cpu_ns: int
    runq_ns: int


def parse_schedstat(text: str) -> SchedSample:
    """``/proc/<tid>/schedstat`` is ``<ns on cpu> <ns waiting on a run queue> <timeslices>``."""
    fields = text.split()
    if len(fields) < 2:
        raise ValueError(f"schedstat has {len(fields)} fields, expected 3: {text!r}")
    return SchedSample(int(fields[0]), int(fields[1]))


class SchedClock:
    """This thread's schedstat, read on demand (None where the kernel does not provide it)."""

    def __init__(self, path: str = SCHEDSTAT) -> None:
        try:
            self._fd: int | None = os.open(path, os.O_RDONLY)
        except OSError:
            self._fd = None

    def sample(self) -> SchedSample | None:
        if self._fd is None:
            return None
        try:
            return parse_schedstat(os.pread(self._fd, 128, 0).decode())
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _ms(text_ns: int | None) -> str:
    return "" if text_ns is None else f"{text_ns / 1e6:.3f}"


class TickTrace:
    """Appends one line per tick to ``path`` (opened once, line-buffered; a header if new).

    Call :meth:`begin` when the loop wakes for a tick and :meth:`end` when its work is done.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO | None = None
        self._clock = SchedClock()
        self._began: SchedSample | None = None

    def begin(self) -> None:
        self._began = self._clock.sample()

    def end(self, tick: int, tick_unix: float, latency_ms: float, scan_ms: float,
            write_ms: float, wake_ms: float) -> None:
        ended = self._clock.sample()
        cpu_ns = runq_ns = None
        if ended is not None and self._began is not None:
            cpu_ns = ended.on_cpu_ns - self._began.on_cpu_ns
            runq_ns = ended.runq_ns - self._began.runq_ns
        if self._file is None:
            new = not self.path.exists()
            self._file = self.path.open("a", buffering=1)
            if new:
                self._file.write(HEADER + "\n")
        self._file.write(f"{tick},{tick_unix:.6f},{latency_ms:.3f},{scan_ms:.3f},{write_ms:.3f},"
                         f"{wake_ms:.3f},{_ms(cpu_ns)},{_ms(runq_ns)}\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._clock.close()
