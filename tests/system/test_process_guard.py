"""The guard in tests/conftest.py finds what a test left running (a child stopped with
SIGSTOP, an orphan in its own session re-parented to init) and ends both."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil

from tests.support import processes


def _wait_for(predicate, what: str, timeout_s: float = 30.0) -> None:
    end = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < end, f"{what}: not within {timeout_s} s"
        time.sleep(0.05)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_the_guard_finds_and_ends_a_stopped_child_and_a_setsid_orphan(tmp_path) -> None:
    pid_file = tmp_path / "orphan.pid"
    subprocess.run(["sh", "-c", f"setsid sleep 300 >/dev/null 2>&1 & echo $! > {pid_file}"],
                   check=True)
    stopped = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    child = psutil.Process(stopped.pid)
    _wait_for(lambda: pid_file.read_text().strip().isdigit(), "the orphan's pid")
    orphan = psutil.Process(int(pid_file.read_text()))
    stopped.send_signal(signal.SIGSTOP)
    _wait_for(lambda: psutil.Process(stopped.pid).status() == psutil.STATUS_STOPPED,
              "the child to stop")
    try:
        assert orphan.ppid() != psutil.Process().pid  # not a descendant: found by its env
        found = {p.pid for p in processes.session_processes()}
        assert {orphan.pid, stopped.pid} <= found, found
        cleaned = {c.pid: c for c in processes.end_processes(
            p for p in processes.session_processes() if p.pid in (orphan.pid, stopped.pid))}
        assert cleaned[stopped.pid].status == "stopped"
        assert all(c.how == "terminated" for c in cleaned.values()), cleaned
        for proc in (child, orphan):
            _wait_for(lambda p=proc: not _alive(p), f"pid {proc.pid} to end")
    finally:  # whatever failed above, leave nothing running
        for pid in (stopped.pid, orphan.pid):
            try:
                psutil.Process(pid).send_signal(signal.SIGCONT)
                psutil.Process(pid).kill()
            except psutil.NoSuchProcess:
                pass
        stopped.wait(timeout=30)
