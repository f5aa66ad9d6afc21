"""Finding and ending the processes a pytest session started, so the suite never hangs on
them and never leaves them behind.

The session exports ``BTPIPELINE_TEST_SESSION=<pytest pid>`` before any test runs; every
process started from the tests inherits it (``project_env`` copies ``os.environ``), including
``setsid``'d workers and orphans re-parented to init, which a walk of pytest's children would
miss. A sweep SIGCONTs stopped processes first (a SIGSTOPped worker would keep a SIGTERM
pending forever), then SIGTERMs, waits, and SIGKILLs what is left.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

SESSION_ENV = "BTPIPELINE_TEST_SESSION"
TERM_GRACE_S = 5.0
SETTLE_S = 1.0
# Python's own helpers of the pytest process: they exit with it (EOF on their pipe) and the
# executor's later runs reuse the forkserver, so they are neither leftovers nor swept.
MULTIPROCESSING_HELPERS = ("multiprocessing.forkserver", "multiprocessing.resource_tracker")


@dataclass(frozen=True)
class Cleaned:
    """One process a sweep ended: what it was and how it ended."""

    pid: int
    cmdline: str
    status: str
    how: str  # "terminated", "killed" or "gone"

    def describe(self) -> str:
        return f"pid {self.pid} ({self.status}, {self.how}): {self.cmdline[:160]}"


def mark_session(environ: dict[str, str] | os._Environ[str] = os.environ) -> str:
    """Export this process's pid as the session marker; returns it."""
    environ[SESSION_ENV] = str(os.getpid())
    return environ[SESSION_ENV]


def _cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline()) or proc.name()
    except psutil.Error:
        return "?"


def _is_helper(proc: psutil.Process, session_pid: int) -> bool:
    try:
        parent = proc.ppid()
    except psutil.Error:
        return False
    return parent == session_pid and any(h in _cmdline(proc) for h in MULTIPROCESSING_HELPERS)


def _carries_marker(proc: psutil.Process, marker: str) -> bool:
    try:
        return proc.environ().get(SESSION_ENV) == marker
    except (psutil.Error, OSError):  # another user's process, or gone meanwhile
        return False


def session_processes(session_pid: int | None = None) -> list[psutil.Process]:
    """Live processes of the session: descendants of pytest, plus any process carrying the
    marker in its environment; neither zombies nor Python's multiprocessing helpers."""
    session_pid = os.getpid() if session_pid is None else session_pid
    found: dict[int, psutil.Process] = {}
    try:
        for child in psutil.Process(session_pid).children(recursive=True):
            found[child.pid] = child
    except psutil.Error:
        pass
    marker, uid = str(session_pid), os.getuid()
    for proc in psutil.process_iter(["uids"]):
        uids = proc.info.get("uids")
        if proc.pid in found or proc.pid == session_pid or (uids and uids.real != uid):
            continue
        if _carries_marker(proc, marker):
            found[proc.pid] = proc
    return [p for p in found.values() if _alive(p) and not _is_helper(p, session_pid)]


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _status(proc: psutil.Process) -> str:
    try:
        return str(proc.status())
    except psutil.Error:
        return "gone"


def end_processes(procs: Iterable[psutil.Process]) -> list[Cleaned]:
    """Let the ones already on their way out finish (a forkserver whose parent just exited
    leaves on its own), then SIGCONT the stopped ones, SIGTERM all, SIGKILL whatever outlives
    the grace period."""
    _, procs = psutil.wait_procs(list(procs), timeout=SETTLE_S)
    procs = [p for p in procs if _alive(p)]  # a zombie has ended: its parent reaps it
    seen = {p.pid: (_cmdline(p), _status(p)) for p in procs}
    for proc in procs:
        try:
            if proc.status() == psutil.STATUS_STOPPED:
                proc.send_signal(signal.SIGCONT)
            proc.terminate()
        except psutil.Error:
            continue
    _, alive = psutil.wait_procs(procs, timeout=TERM_GRACE_S)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            continue
    psutil.wait_procs(alive, timeout=TERM_GRACE_S)
    killed = {p.pid for p in alive}
    return [Cleaned(pid, cmd, status, "killed" if pid in killed else "terminated")
            for pid, (cmd, status) in seen.items() if status != "gone"]


def ancestors(proc: psutil.Process) -> set[int]:
    """Pids of ``proc``'s parents up to init (empty if it is gone)."""
    try:
        return {p.pid for p in proc.parents()}
    except psutil.Error:
        return set()


def first_worker(run_process: psutil.Process) -> psutil.Process | None:
    """A worker of the run in ``run_process``: the first child of its forkserver (named
    ``btp-forkserver`` when forked from the run process, ``...forkserver...`` in its command line
    when started as a fresh Python), or None while there is none."""
    from btpipeline.executors.forked_server import FORKSERVER_NAME

    for child in run_process.children(recursive=True):
        try:
            if (child.name() == FORKSERVER_NAME or "forkserver" in _cmdline(child)) and \
                    child.children():
                return child.children()[0]
        except psutil.Error:
            continue
    return None
