"""The executor's fast path: a thread that pauses this run's workers when the scanner needs
the machine, within a few sampling intervals, and resumes them with hysteresis.

Sensor ticks are seconds apart; this thread samples every ``shed_interval_seconds`` (25 ms by
default) in the run process itself, and at once when the kernel wakes it
(:mod:`btpipeline.monitor.wakeups`: the scanner's heartbeat was rewritten, or a PSI trigger on
the scanner's own cgroup fired); it blocks in ``poll()`` between samples, never sleeps blind.
On a trip it sends SIGSTOP to every worker's process group
(a stopped process uses no CPU and keeps its memory, so the step later resumes exactly where it
was) and tells the dispatch loop to hold new steps; when healthy again it sends SIGCONT.

The decision is the one protection policy (:mod:`btpipeline.machine.protection`): the same
levels, mode scaling and CLOSED / OPEN / HALF_OPEN machine as the circuit breaker. OPEN pauses
the workers; leaving OPEN (HALF_OPEN, then CLOSED) resumes them. What trips it:
* the fast signals (other processes' CPU, memory, the scanner's latency and stall), sampled
  every tick (:mod:`~btpipeline.executors.shedding` turns them into protection signals);
* the circuit breaker's published state OPEN, and a higher-priority run waiting
  (preemption), read every ``queue_check_interval_seconds`` from the instance.

Only runs at or below ``shed_max_priority`` (NORMAL by default) are ever paused: HIGH and
CRITICAL runs are the work the operator wants now.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from btpipeline.executors.run_queue_view import QueueFacts
from btpipeline.executors.shedding import fast_signals
from btpipeline.machine.heartbeat import read_scanner_status
from btpipeline.machine.pause_points import PauseFlags
from btpipeline.machine.protection import ProtectionLevels
from btpipeline.machine.protection_state import CircuitState, ProtectionMachine, ProtectionState
from btpipeline.monitor.fast_signals import FastSample, FastSampler
from btpipeline.monitor.wakeups import Wakeups

#: Most seconds ``LoadGuard.start`` waits for the first sample (its first breaker and queue
#: read opens an instance).
FIRST_TICK_WAIT_S = 2.0

QueueReader = Callable[[], QueueFacts]


@dataclasses.dataclass(frozen=True)
class GuardNotice:
    """A transition, for the dispatch loop to log as an engine event."""

    paused: bool  # True: paused (OPEN), False: resumed (left OPEN)
    reason: str
    at: float  # epoch seconds when the signals were sampled
    applied_at: float  # epoch seconds when the last signal was sent
    workers: int
    sample: FastSample | None


class LoadGuard:
    """Pauses and resumes the registered worker pids; thread-safe registration."""

    def __init__(self, levels: ProtectionLevels, free_cores: float, *, interval_s: float = 0.025,
                 sampler: FastSampler | None = None, queue_reader: QueueReader | None = None,
                 queue_interval_s: float = 1.0, kernel_wakeups: bool = True) -> None:
        self.free_cores = free_cores
        self._interval, self._queue_interval = interval_s, queue_interval_s
        self._sampler = sampler or FastSampler()
        self._levels = levels
        self._kernel_wakeups = kernel_wakeups
        self.wakeups: Wakeups | None = None
        self.woken = 0  # samples taken early because the kernel woke the thread
        self._queue_reader = queue_reader
        self._machine = ProtectionMachine(levels)
        self._lock = threading.Lock()
        self._pids: dict[int, PauseFlags | None] = {}
        self._notices: list[GuardNotice] = []
        self._paused = threading.Event()
        self._done = threading.Event()
        self._first_tick = threading.Event()
        self._paused_ns_total = 0
        self._paused_at_ns: int | None = None
        self._facts: QueueFacts | None = None
        self._next_queue_read = 0.0
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._run, name="btpipeline-load-guard",
                                        daemon=True)

    # -- used by the dispatch loop (run thread)
    def start(self) -> None:
        """Start sampling; returns once the first sample is taken (or after
        ``FIRST_TICK_WAIT_S``), so a breaker that is OPEN or a scanner in need holds the run
        before its first step is dispatched, however fast the workers are ready."""
        if self._kernel_wakeups:
            try:
                self.wakeups = Wakeups(self._sampler.status_path,
                                       psi_stall_fraction=self._levels.scanner_run_delay_fraction)
            except OSError as exc:  # no fds left, no poll(): the guard still polls
                self.errors.append(f"kernel wake-ups unavailable, polling only: {exc}")
            status = read_scanner_status(self._sampler.status_path)
            if self.wakeups is not None and status is not None and not status.stopped:
                self.wakeups.arm_pressure(status.pid)
        self._thread.start()
        self._first_tick.wait(FIRST_TICK_WAIT_S)

    def wakeup_description(self) -> str:
        """What wakes the thread besides its interval, for the run's log."""
        if self.wakeups is None:
            why = "off" if not self._kernel_wakeups else "unavailable"
            return f"polling every {self._interval * 1000:g} ms (kernel wake-ups {why})"
        return (f"polling every {self._interval * 1000:g} ms, "
                f"{self.wakeups.describe()}")

    def stop(self) -> None:
        """Stop sampling and resume every paused worker (termination, end of run)."""
        self._done.set()
        if self.wakeups is not None:
            self.wakeups.interrupt()
        if self._thread.is_alive():
            self._thread.join(2.0)
        if self.wakeups is not None and not self._thread.is_alive():
            self.wakeups.close()
        with self._lock:
            self._resume_all()
            self._mark_resumed()

    def register(self, pid: int, flags: PauseFlags | None = None) -> None:
        """A worker started: pause it at once if the run is paused."""
        with self._lock:
            self._pids[pid] = flags
            if self._paused.is_set():
                self._pause(pid, flags)

    def unregister(self, pid: int) -> None:
        with self._lock:
            self._pids.pop(pid, None)

    @property
    def holding(self) -> bool:
        """True while paused: the dispatch loop starts no new step."""
        return self._paused.is_set()

    def paused_seconds(self) -> float:
        """Total time paused so far (steps' timeouts do not count it)."""
        with self._lock:
            extra = time.monotonic_ns() - self._paused_at_ns if self._paused_at_ns else 0
            return (self._paused_ns_total + extra) / 1e9

    def drain_notices(self) -> list[GuardNotice]:
        with self._lock:
            notices, self._notices = self._notices, []
        return notices

    # -- the thread
    def _run(self) -> None:
        self._tick_safely()
        self._first_tick.set()
        while not self._wait():
            self._tick_safely()

    def _tick_safely(self) -> None:
        try:
            self._tick()
        except Exception as exc:  # noqa: BLE001 - a sampling error must not kill the run
            if len(self.errors) < 10:
                self.errors.append(f"{type(exc).__name__}: {exc}")

    def _wait(self) -> bool:
        """Block until the next sample is due or the kernel wakes us; True once stopped."""
        if self.wakeups is None:
            return self._done.wait(self._interval)
        try:
            if set(self.wakeups.wait(self._interval)) - {"interrupt"}:
                self.woken += 1
        except OSError as exc:  # a broken source: back to plain polling, said in the log
            self.errors.append(f"kernel wake-ups dropped, polling only: {exc}")
            self.wakeups.close()
            self.wakeups = None
        return self._done.is_set()

    def _tick(self) -> None:
        with self._lock:
            pids = set(self._pids)
        sample = self._sampler.sample(pids)
        if self.wakeups is not None:
            self.wakeups.arm_pressure(sample.scanner_pid)
        facts = self._read_queue()
        now, current = time.monotonic(), self._machine.state
        paused_since = (time.time() - (now - current.since)
                        if current.state is CircuitState.OPEN else None)
        change = self._machine.observe(
            now, fast_signals(sample, self.free_cores), extra=facts,
            resume_signals=fast_signals(sample, self.free_cores,
                                        ignore_latency_before=paused_since))
        if change is not None and (change.state is CircuitState.OPEN
                                   or current.state is CircuitState.OPEN):
            self._apply(change, sample)

    def _read_queue(self) -> list[str]:
        if self._queue_reader is None:
            return []
        now = time.monotonic()
        if now >= self._next_queue_read:
            self._next_queue_read = now + self._queue_interval
            self._facts = self._queue_reader()
        return self._facts.reasons() if self._facts else []

    def _apply(self, change: ProtectionState, sample: FastSample) -> None:
        """Actuate a transition into OPEN (pause) or out of it (resume)."""
        paused = change.state is CircuitState.OPEN
        with self._lock:
            if paused:
                self._paused.set()
                self._paused_at_ns = time.monotonic_ns()
                for pid, flags in list(self._pids.items()):
                    self._pause(pid, flags)
            else:
                self._resume_all()
                self._mark_resumed()
            self._notices.append(GuardNotice(paused, change.reason, sample.at,
                                             time.time(), len(self._pids), sample))

    def _mark_resumed(self) -> None:
        if self._paused_at_ns is not None:
            self._paused_ns_total += time.monotonic_ns() - self._paused_at_ns
            self._paused_at_ns = None
        self._paused.clear()

    def _pause(self, pid: int, flags: PauseFlags | None) -> None:
        """Stop the worker, but never inside a critical section (a database write holding a
        lock, see :mod:`btpipeline.machine.pause_points`): there it stops itself on leaving."""
        if flags is not None:
            flags.request_pause()
            if flags.in_critical_section:
                return
        _send(pid, signal.SIGSTOP)
        if flags is not None and _wait_stopped(pid) and flags.in_critical_section:
            _send(pid, signal.SIGCONT)  # it entered one as the signal flew: let it finish

    def _resume_all(self) -> None:
        for pid, flags in list(self._pids.items()):
            if flags is not None:
                flags.clear_request()
            _send(pid, signal.SIGCONT)


def _send(pid: int, sig: signal.Signals) -> None:
    """Signal the worker's process group (it leads one), or the pid before it does."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _wait_stopped(pid: int, timeout_s: float = 0.05) -> bool:
    """Wait until ``pid`` shows as stopped in /proc (True), or the timeout passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        if state in ("T", "t"):
            return True
        time.sleep(0.0005)
    return False


def guard_message(notice: GuardNotice) -> str:
    reaction_ms = (notice.applied_at - notice.at) * 1000.0
    if notice.paused:
        return (f"backtest_executor: paused {notice.workers} worker(s) (SIGSTOP) and holding new "
                f"steps, {reaction_ms:.0f} ms after sampling: {notice.reason}.")
    return (f"backtest_executor: resumed {notice.workers} worker(s) (SIGCONT): "
            f"{notice.reason}.")


def guard_metadata(notice: GuardNotice) -> dict[str, object]:
    out: dict[str, object] = {"shed_state": "PAUSED" if notice.paused else "RUNNING",
                              "reason": notice.reason,
                              "sampled_at_unix": notice.at, "applied_at_unix": notice.applied_at,
                              "workers": notice.workers}
    if notice.sample is not None:
        out.update({k: v for k, v in dataclasses.asdict(notice.sample).items()
                    if v is not None and k != "at"})
    return out
