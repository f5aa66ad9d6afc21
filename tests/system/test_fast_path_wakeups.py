"""What wakes the executor's fast path between samples: the scanner's heartbeat (inotify) and a
PSI trigger on a real cgroup whose processes stall on CPU. Real kernel sources, real files,
real processes; every wait is bounded but never judged by how long it took."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from btpipeline.executors.load_guard import LoadGuard
from btpipeline.machine.heartbeat import ScannerStatus, write_status
from btpipeline.machine.protection import ProtectionLevels
from btpipeline.monitor.fast_signals import FastSampler
from btpipeline.monitor.wakeups import Wakeups, cgroup_v2_mount

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="inotify and PSI are Linux interfaces")
#: Bounds, not measurements: an idle machine answers in milliseconds (heartbeat) or within a
#: trigger window (PSI, 2 s without CAP_SYS_RESOURCE); a loaded one may take far longer.
WAIT_S = 30.0


def _status(pid: int, latency_ms: float) -> ScannerStatus:
    return ScannerStatus(
        pid=pid, started_at="2026-01-01T00:00:00Z", heartbeat_unix=time.time(),
        cadence_seconds=0.25, budget_ms=100.0, epics=["EURUSD"], strategies=["macd_crossover"],
        isolation={}, feed="test", ticks=1, last_latency_ms=latency_ms)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A process standing in for a pid the guard reads (the scanner's, or a worker's)."""
    proc = subprocess.Popen(["sleep", "600"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def test_a_heartbeat_write_wakes_the_waiter_and_other_files_do_not(tmp_path, sleeper):
    status = tmp_path / "scanner" / "status.json"
    status.parent.mkdir()
    wakeups = Wakeups(status)
    try:
        assert "heartbeat" in wakeups.describe()
        (status.parent / "other.txt").write_text("not the heartbeat")
        assert wakeups.wait(0.2) == ()  # the folder changed, but not the status file
        write_status(status, _status(sleeper.pid, 5.0))
        assert wakeups.wait(WAIT_S) == ("heartbeat",)
    finally:
        wakeups.close()


def test_the_heartbeat_wakes_the_guard_which_pauses_workers_long_before_its_interval(
        tmp_path, sleeper):
    """Sampling every 10 minutes, the guard still stops the worker once the scanner publishes
    a tick over its budget: only the heartbeat's wake-up can have made it sample."""
    status = tmp_path / "scanner" / "status.json"
    write_status(status, _status(sleeper.pid, 5.0))
    worker = subprocess.Popen(["sleep", "600"], start_new_session=True)
    guard = LoadGuard(ProtectionLevels(), 0.0, interval_s=600.0,
                      sampler=FastSampler(status, measure_cpu=False))
    try:
        guard.register(worker.pid)
        guard.start()
        assert "heartbeat" in guard.wakeup_description()
        write_status(status, _status(sleeper.pid, 500.0))  # a tick 5x over its 100 ms budget
        deadline = time.monotonic() + WAIT_S
        while psutil.Process(worker.pid).status() != psutil.STATUS_STOPPED:
            assert time.monotonic() < deadline, "the heartbeat did not wake the guard"
            time.sleep(0.01)
        assert guard.woken >= 1 and guard.holding
        notices = guard.drain_notices()
        assert notices and notices[0].paused and "budget" in notices[0].reason
    finally:
        guard.stop()
        worker.kill()
        worker.wait()


def _new_cgroup() -> Path:
    """A fresh cgroup v2 group, or a skip (a failure when CI is set) saying why there is none."""
    mount = cgroup_v2_mount()
    reason = "no cgroup v2 hierarchy is mounted" if mount is None else None
    group = (mount or Path("/")) / f"btpipeline-test-{os.getpid()}"
    if reason is None:
        try:
            group.mkdir()
        except OSError as exc:
            reason = f"cannot create a cgroup v2 group {group}: {exc.strerror} (needs root)"
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, so the PSI trigger test must run.",
                        pytrace=False)
        pytest.skip(f"{reason}; PSI triggers are unavailable here (CI unset, so skipping).")
    return group


def test_a_psi_trigger_on_a_stalling_cgroup_wakes_the_waiter():
    """Two busy loops pinned to one CPU in their own group stall each other: the group's CPU
    pressure crosses the trigger and the kernel wakes the poll."""
    group = _new_cgroup()
    cpu = min(os.sched_getaffinity(0))
    hogs: list[subprocess.Popen[bytes]] = []
    wakeups = Wakeups(None, psi_stall_fraction=0.05)
    try:
        if not wakeups.watch_pressure(group / "cpu.pressure"):
            message = f"PSI trigger unavailable: {wakeups.describe()}"
            if os.environ.get("CI"):
                pytest.fail(f"{message}; CI is set, so it must work.", pytrace=False)
            pytest.skip(f"{message} (CI unset, so skipping).")
        assert "a PSI trigger" in wakeups.describe()
        for _ in range(2):
            hog = subprocess.Popen(["sh", "-c", "while :; do :; done"],
                                   preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
            hogs.append(hog)
            (group / "cgroup.procs").write_text(str(hog.pid))
        fired: tuple[str, ...] = ()
        deadline = time.monotonic() + WAIT_S
        while not fired and time.monotonic() < deadline:
            fired = wakeups.wait(1.0)
        assert fired == ("psi",), f"no PSI event within {WAIT_S} s ({wakeups.describe()})"
    finally:
        for hog in hogs:
            hog.send_signal(signal.SIGKILL)
            hog.wait()
        wakeups.close()
        group.rmdir()
