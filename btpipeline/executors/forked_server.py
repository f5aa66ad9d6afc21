"""Start the run's ``forkserver`` by forking the run process instead of starting a new Python.

Python's forkserver starts a fresh interpreter that imports its preload list (Dagster,
SQLAlchemy, numpy, pandas, pyarrow, the job's module): ~3-4 s of one core on this machine
before the first worker exists, although the run process has imported all of it already. Here
the forkserver is a fork of the run process, made when the executor starts, before its fast-path
thread: it starts in milliseconds with every module the run has, and every worker is forked from
it as before (same ``multiprocessing`` forkserver protocol, same ``Process`` objects, pipes and
exit codes). The fork is taken from a quiet moment of the run process (no thread of ours
running), and the forkserver only ever forks workers, which open their own instance and
connections; the run process's own connections are not used there.

``BTPIPELINE_WORKER_START=spawn`` (a deployment setting) keeps Python's own start: a fresh
interpreter importing ``forkserver_preload()``.

The forkserver and its workers name themselves (``/proc/<pid>/comm``, what ``ps``/``top`` and
``psutil.Process.name()`` show) ``btp-forkserver`` and ``btp-worker``, because their command
line is the run process's.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from multiprocessing import connection, forkserver, resource_tracker, spawn, util
from typing import Any

from btpipeline.errors import ExecutorConfigError

WORKER_START_ENV = "BTPIPELINE_WORKER_START"
FORKSERVER_NAME = "btp-forkserver"
WORKER_NAME = "btp-worker"
PR_SET_NAME = 15  # <linux/prctl.h>
STOP_WAIT_S = 2.0  # the forkserver exits at once when its pipe closes; then it is killed


def forks_run_process(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the forkserver is forked from the run process (``BTPIPELINE_WORKER_START``
    unset or ``fork``) rather than started as a fresh Python (``spawn``)."""
    value = (os.environ if environ is None else environ).get(WORKER_START_ENV, "fork")
    value = value.strip().lower() or "fork"
    if value not in ("fork", "spawn"):
        raise ExecutorConfigError(
            WORKER_START_ENV, "'fork' or 'spawn'", value,
            f"unset {WORKER_START_ENV} (or set 'fork': the forkserver is forked from the run "
            "process) or set 'spawn' (a fresh Python importing BTPIPELINE_FORKSERVER_PRELOAD).")
    return value == "fork"


def name_process(name: str) -> None:
    """Set this process's name (``comm``, at most 15 bytes); nothing where prctl is missing."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)
    except (OSError, AttributeError):
        pass


@contextlib.contextmanager
def forked_forkserver() -> Iterator[int | None]:
    """This process's forkserver as a fork of it, for one run: started on entry (replacing a
    forkserver left from before, so the workers see this run's process as it is now), stopped
    on exit. Yields its pid, or None (and starts nothing) while another thread runs here: a
    fork must not copy a lock another thread holds; Python's own start is used then."""
    if threading.active_count() > 1:
        yield None
        return
    pid = _start()
    try:
        yield pid
    finally:
        _stop()


def _server() -> Any:
    return forkserver._forkserver


def _start() -> int:
    server = _server()
    _stop()
    with server._lock:
        resource_tracker.ensure_running()
        with socket.socket(socket.AF_UNIX) as listener:
            address = connection.arbitrary_address("AF_UNIX")  # type: ignore[attr-defined]
            listener.bind(address)
            if not util.is_abstract_socket_namespace(address):
                os.chmod(address, 0o600)
            listener.listen()
            # Every client owns the write end of the "alive" pipe; when all have closed it
            # (this process, at _stop or its end) the forkserver exits.
            alive_r, alive_w = os.pipe()
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:  # the forkserver
                _serve(listener.fileno(), alive_r, alive_w)
            os.close(alive_r)
        server._forkserver_address = address
        server._forkserver_alive_fd = alive_w
        server._forkserver_pid = pid
        return pid


def _stop() -> None:
    """End this process's forkserver, if one runs (it exits when its "alive" pipe closes), and
    reap it."""
    server = _server()
    with server._lock:
        pid, alive = server._forkserver_pid, server._forkserver_alive_fd
        server._forkserver_address = server._forkserver_alive_fd = None
        server._forkserver_pid = None
    if alive is not None:
        os.close(alive)
    if pid is None:
        return
    deadline = time.monotonic() + STOP_WAIT_S
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        time.sleep(0.005)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _serve(listener_fd: int, alive_r: int, alive_w: int) -> None:
    """The forked forkserver's life: Python's forkserver loop, never returning."""
    code = 1
    try:
        os.close(alive_w)
        # Forked while the run process held it: a worker starting a forkserver process of its
        # own must find it free.
        _server()._lock = threading.Lock()
        _default_signal_handlers()
        _keep_main_module()
        name_process(FORKSERVER_NAME)
        # What the run process had is kept alive by it anyway: leave it out of the workers'
        # garbage collections, which would otherwise scan it (and copy every page they touch).
        gc.freeze()
        forkserver.main(listener_fd, alive_r, [])
        code = 0
    except BaseException:  # noqa: BLE001 - a forkserver must never return into the run's code
        pass
    finally:
        os._exit(code)


def _default_signal_handlers() -> None:
    """Python's start-up handlers, not the run process's: the forkserver hands its handlers
    down to every worker (SIGINT must raise KeyboardInterrupt there, SIGTERM must end it)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for name in ("SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM"):
        number = getattr(signal, name, None)
        if number is not None:
            signal.signal(number, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as Python sets it at start-up


def _keep_main_module() -> None:
    """A worker starting from a spawned forkserver imports the run's ``__main__`` again (as
    ``__mp_main__``); a fork of the run process has it already, and a main module without a
    file (``python -c``, stdin) cannot be imported again. Only this process's copy of
    ``multiprocessing.spawn`` is changed."""
    spawn._fixup_main_from_path = lambda _path: None  # type: ignore[attr-defined]
    spawn._fixup_main_from_name = lambda _name: None  # type: ignore[attr-defined]
