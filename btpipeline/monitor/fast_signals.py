"""Sub-second load signals for the executor's fast path (sampled at 40 Hz).

The resource-monitor sensor looks every few seconds at 10-second averages; the executor's
load guard needs to react within ~100 ms, so it measures over its own trailing windows
(``shed_cpu_window_seconds``, 200 ms, and the short ``shed_cpu_burst_window_seconds``, 50 ms):

* **other CPU**: cores' worth of CPU used by everything *except backtest machinery* (this
  run's process tree, every run's workers, Dagster's own processes), from
  ``/proc/stat`` and ``/proc/<pid>/stat`` deltas (psutil). Our own workers are excluded on
  purpose: a machine at 100 % because backtests fill their cores is working as designed; what
  threatens the scanner is other load needing more than the cores backtests leave free. A
  paused worker uses no CPU, so the figure while paused predicts what resuming would face (no
  pause/resume flapping). Only counted while a scanner runs: busy cores harm no one
  latency-critical otherwise. Over both windows, from one ring of readings: the burst figure
  has its own, higher level (more than the free cores), so a multi-core hog trips within
  tens of milliseconds while a single busy process must hold the full window.
* **scanner**: the live scanner's last tick latency, whether its *next* tick is already
  overdue past the budget (caught before the tick ends), and its run-queue delay over the
  same trailing window from ``/proc/<pid>/schedstat`` (time it was runnable but not running:
  its own stall; over the window, not since the last sample, so a sample taken early because
  a heartbeat woke the guard does not judge a stall over a few milliseconds).
* **memory**: the machine's used fraction.

Each read costs tens of microseconds; processes are read through cached ``psutil.Process``
objects (one ``/proc/<pid>/stat`` read each per sample).
"""

from __future__ import annotations

import collections
import dataclasses
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import psutil

from btpipeline.machine.heartbeat import ScannerStatus, default_status_path, read_scanner_status


@dataclasses.dataclass(frozen=True)
class FastSample:
    """One window's figures; ``None`` where the signal is absent (no scanner running)."""

    at: float  # time.time() of the sample
    window_s: float  # 0 when other processes' CPU was not measured (no live scanner)
    other_cpu_cores: float
    memory_fraction: float
    scanner_last_latency_ms: float | None = None
    scanner_overdue_ms: float | None = None  # how far past its budget the current tick is
    scanner_run_delay_fraction: float | None = None
    scanner_budget_ms: float | None = None
    scanner_heartbeat_unix: float | None = None
    scanner_pid: int | None = None
    other_cpu_burst_cores: float = 0.0  # other processes' CPU over the short burst window
    burst_window_s: float = 0.0  # 0 when not measured


def _busy_seconds(times: psutil._common.scputimes) -> float:  # type: ignore[name-defined]
    idle = times.idle + getattr(times, "iowait", 0.0)
    return sum(times) - idle - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)


class ProcessCpu:
    """CPU seconds of pids through cached ``psutil.Process`` objects: one ``/proc/<pid>/stat``
    read per pid and sample instead of two plus an object (the fast path samples at 40 Hz)."""

    def __init__(self) -> None:
        self._processes: dict[int, psutil.Process] = {}

    def read(self, pid: int) -> tuple[float, float] | None:
        """``(user + system CPU seconds, start time epoch)`` of ``pid``, None if it is gone."""
        try:
            process = self._processes.get(pid)
            if process is None:
                process = self._processes[pid] = psutil.Process(pid)
            times = process.cpu_times()
            return times.user + times.system, process.create_time()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            self._processes.pop(pid, None)
            return None

    def forget_except(self, pids: set[int]) -> None:
        for pid in set(self._processes) - pids:
            del self._processes[pid]


def read_run_delay_ns(pid: int) -> int | None:
    """Nanoseconds ``pid`` has spent runnable but waiting for a CPU (``/proc/<pid>/schedstat``
    second field), or None where schedstats are unavailable or the process is gone."""
    try:
        fields = Path(f"/proc/{pid}/schedstat").read_text().split()
        return int(fields[1])
    except (OSError, IndexError, ValueError):
        return None


class Reading(NamedTuple):
    mono: float
    epoch: float
    busy: float  # busy CPU seconds of the whole machine
    own: dict[int, float]  # CPU seconds of each excluded pid


class CpuMeter:
    """CPU used by other processes than ``pids`` over the last ``window_s`` seconds, in cores.

    Readings are kept in a short ring so the window can be longer than the sampling interval
    (a 25 ms tick over a 200 ms window: a one-core blip must last ~170 ms to count), and the
    same ring gives the figure over the short ``burst_s`` window (:attr:`last_burst`).
    """

    def __init__(self, window_s: float = 0.2, burst_s: float | None = None) -> None:
        self._window = window_s
        self._burst = min(burst_s, window_s) if burst_s else None
        self._shortest = self._burst or window_s
        self._ring: collections.deque[Reading] = collections.deque()
        self._processes = ProcessCpu()
        #: ``(cores, window s)`` over the short burst window, from the last call
        self.last_burst = (0.0, 0.0)

    def reset(self) -> None:
        """Forget the readings: the next call takes a fresh baseline."""
        self._ring.clear()

    def other_cores(self, pids: Iterable[int], *, record: bool = True) -> tuple[float, float]:
        """``(cores used by others, window seconds)`` over the window ending now; ``(0, 0)``
        until the readings span the burst window (or the window): the first call only takes
        the baseline (with the pids' CPU in it: a baseline without them would count their
        first window as someone else's load).
        ``record=False`` answers again for other pids without adding a reading."""
        now = Reading(time.monotonic(), time.time(), _busy_seconds(psutil.cpu_times()), {})
        started: dict[int, float] = {}
        pids = set(pids)
        for pid in pids:
            if (cpu := self._processes.read(pid)) is not None:
                now.own[pid], started[pid] = cpu
        if record:
            self._processes.forget_except(pids)
        if not self._ring or now.mono - self._ring[0].mono < self._shortest:
            # no figure until the readings span the shortest window: a first window of one
            # sampling interval would judge a 25 ms blip as a sustained load
            if not self._ring:
                self._ring.append(now)
            self.last_burst = (0.0, 0.0)
            return 0.0, 0.0
        while len(self._ring) > 1 and self._ring[1].mono <= now.mono - self._window:
            self._ring.popleft()
        if self._burst is not None:
            since = next((r for r in reversed(self._ring) if r.mono <= now.mono - self._burst),
                         self._ring[0])
            self.last_burst = self._others(since, now, started)
        result = self._others(self._ring[0], now, started)
        if record:
            self._ring.append(now)
        return result

    def _others(self, then: Reading, now: Reading, started: dict[int, float]
                ) -> tuple[float, float]:
        own_delta = sum(cpu - self._baseline(then, pid, cpu, started[pid])
                        for pid, cpu in now.own.items())
        window = max(now.mono - then.mono, 1e-6)
        return max(0.0, (now.busy - then.busy) - own_delta) / window, window

    @staticmethod
    def _baseline(then: Reading, pid: int, cpu: float, started: float) -> float:
        """The pid's CPU at the window's start: 0 if it was born since (a new worker's start-up
        is its own work), unknown (no delta) for an older process first seen now."""
        if pid in then.own:
            return then.own[pid]
        return 0.0 if started >= then.epoch else cpu


class ScannerWatch:
    """The live scanner's heartbeat (re-read only when the file changes) and its stall."""

    def __init__(self, status_path: Path | None = None, window_s: float = 0.2) -> None:
        self._path = status_path
        self._mtime_ns = -1
        self._status: ScannerStatus | None = None
        self._window = window_s
        # (monotonic s, run-delay s) of the scanner pid ``_delay_pid``, the window's readings
        self._delays: collections.deque[tuple[float, float]] = collections.deque()
        self._delay_pid: int | None = None

    def _refresh(self) -> ScannerStatus | None:
        path = self._path or default_status_path()
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            self._status, self._mtime_ns = None, -1
            return None
        if mtime != self._mtime_ns:
            self._status, self._mtime_ns = read_scanner_status(path), mtime
        return self._status

    def sample(self, now: float) -> dict[str, Any]:
        status = self._refresh()
        if status is None or status.stopped or now - status.heartbeat_unix > 60 * max(
                status.cadence_seconds, 1.0):
            self._delays.clear()
            return {}
        # the last tick was scheduled ~latency before its heartbeat; the next one is late once
        # it has not reported within cadence + budget of that schedule
        scheduled = status.heartbeat_unix - (status.last_latency_ms or 0.0) / 1000.0
        overdue = (now - scheduled) * 1000.0 - (status.cadence_seconds * 1000.0 + status.budget_ms)
        return {
            "scanner_last_latency_ms": status.last_latency_ms,
            "scanner_overdue_ms": overdue if overdue > 0 else 0.0,
            "scanner_run_delay_fraction": self._run_delay_fraction(status.pid),
            "scanner_budget_ms": status.budget_ms,
            "scanner_heartbeat_unix": status.heartbeat_unix,
            "scanner_pid": status.pid,
        }

    def _run_delay_fraction(self, pid: int) -> float | None:
        """The fraction of the trailing window the scanner sat runnable but not running; 0 on
        the first reading of a pid (the baseline)."""
        delay_ns = read_run_delay_ns(pid)
        if delay_ns is None:
            self._delays.clear()
            return None
        mono = time.monotonic()
        if pid != self._delay_pid:
            self._delays.clear()
            self._delay_pid = pid
        self._delays.append((mono, delay_ns / 1e9))
        while len(self._delays) > 2 and self._delays[1][0] <= mono - self._window:
            self._delays.popleft()
        then, delay_then = self._delays[0]
        if then == mono:
            return 0.0
        # a window shorter than the configured one (the first samples) still divides by it:
        # a few milliseconds' wait never reads as a large fraction of a tiny window
        return max(0.0, delay_ns / 1e9 - delay_then) / max(mono - then, self._window)


class ProcessTable:
    """Which live processes are backtest machinery, read once per process: its command line
    (marks) and parent (descendants of this process), at the first listing that sees it."""

    def __init__(self) -> None:
        self._seen: dict[int, tuple[int, bool]] = {}  # pid -> (parent pid, has a mark)

    def machinery(self, marks: tuple[str, ...], names: tuple[str, ...] = ()) -> list[int]:
        pids = set(psutil.pids())
        for pid in set(self._seen) - pids:
            del self._seen[pid]
        for pid in sorted(pids - set(self._seen)):
            if (facts := _process_facts(pid, marks, names)) is not None:
                self._seen[pid] = facts
        me = os.getpid()
        return sorted(pid for pid, (_parent, marked) in self._seen.items()
                      if marked or self._descends(pid, me))

    def _descends(self, pid: int, ancestor: int) -> bool:
        for _ in range(32):  # a process tree deeper than this is not ours
            parent = self._seen.get(pid, (0, False))[0]
            if parent == ancestor:
                return True
            if parent <= 1:
                return False
            pid = parent
        return False


def _process_facts(pid: int, marks: tuple[str, ...],
                   names: tuple[str, ...] = ()) -> tuple[int, bool] | None:
    """``(parent pid, whether its command line holds a mark or its name is one of
    ``names``)``, None if it is gone."""
    try:
        line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace")
        stat = Path(f"/proc/{pid}/stat").read_text()
        parent = int(stat.rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None
    name = stat[stat.find("(") + 1:stat.rfind(")")]
    return parent, name in names or any(mark in line for mark in marks)


class FastSampler:
    """One :class:`FastSample` per call; keeps the previous readings to form deltas."""

    #: How often the backtest machinery is listed (a /proc scan, ~2 ms for 90 processes).
    MACHINERY_TTL_S = 0.5
    #: Command-line marks of backtest machinery: every run's forkserver and workers (forked
    #: from it, same command line) and Dagster's own processes (run processes, daemon, code
    #: servers, webserver), whose bursts launching runs are part of running backtests. If
    #: they ever do slow the scanner, its own latency and stall signals still trip.
    MACHINERY_MARKS = ("btpipeline.executors.worker", "dagster")
    #: Process names (``comm``) of backtest machinery: a forkserver forked from its run
    #: process, and its workers, carry that process's command line but name themselves.
    MACHINERY_NAMES = ("btp-forkserver", "btp-worker")
    #: Above this much other load, re-list the machinery before reporting it.
    RECHECK_ABOVE_CORES = 0.5

    def __init__(self, scanner_status_path: Path | None = None, cpu_window_s: float = 0.2,
                 *, measure_cpu: bool = True, burst_window_s: float | None = None) -> None:
        self._cpu = CpuMeter(cpu_window_s, burst_window_s)
        self._measure_cpu = measure_cpu
        self._scanner = ScannerWatch(scanner_status_path, cpu_window_s)
        self.status_path = scanner_status_path or default_status_path()
        self._machinery: list[int] = []
        self._machinery_at = 0.0
        self._processes = ProcessTable()

    def _backtest_machinery(self, refresh: bool = False) -> list[int]:
        """This run's descendants and every run's workers and run processes: their load is
        backtests sharing the backtest cores (each run's own guard sees the scanner's needs),
        not load the scanner must be protected from. Listed every ``MACHINERY_TTL_S``, or
        now with ``refresh``; only processes born since the last listing are read (a full
        read of every command line took 10-25 ms on a loaded machine, on the path between
        seeing a hog and stopping the workers)."""
        now = time.monotonic()
        if refresh or now - self._machinery_at > self.MACHINERY_TTL_S:
            self._machinery_at = now
            self._machinery = self._processes.machinery(self.MACHINERY_MARKS,
                                                        self.MACHINERY_NAMES)
        return self._machinery
    def sample(self, own_pids: Iterable[int]) -> FastSample:
        """The figures now. Other processes' CPU is measured only while a scanner is live and
        ``measure_cpu`` (no core left beside the workers: STANDALONE): the CPU signal counts
        only then (shedding.trip_reasons), and measuring it costs /proc scans every tick that
        would compete with the backtests for nothing."""
        now = time.time()
        scanner = self._scanner.sample(now)
        if not (self._measure_cpu and scanner):
            self._cpu.reset()  # a fresh baseline when it is needed
            return FastSample(at=now, window_s=0.0, other_cpu_cores=0.0,
                              memory_fraction=psutil.virtual_memory().percent / 100.0,
                              **scanner)
        own_pids = list(own_pids)
        own = {os.getpid(), *self._backtest_machinery(), *own_pids}
        other, window = self._cpu.other_cores(own)
        if (max(other, self._cpu.last_burst[0]) > self.RECHECK_ABOVE_CORES
                and time.monotonic() - self._machinery_at > 0.05):
            # a run process or worker born since the last listing would count as load: list
            # again and answer for the same window before anything trips on it
            own = {os.getpid(), *self._backtest_machinery(refresh=True), *own_pids}
            other, window = self._cpu.other_cores(own, record=False)
        burst, burst_window = self._cpu.last_burst
        return FastSample(at=now, window_s=window, other_cpu_cores=other,
                          memory_fraction=psutil.virtual_memory().percent / 100.0,
                          other_cpu_burst_cores=burst, burst_window_s=burst_window, **scanner)
