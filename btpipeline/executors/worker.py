"""The warm worker process: open the instance and rebuild the job once, then run many steps.

Started by :class:`~btpipeline.executors.worker_pool.WorkerPool` through a ``forkserver``
context (by default a fork of the run process, ``forked_server.py``), so Dagster, SQLAlchemy,
the data stack and the job's code are already imported. The worker leads its
own session and process group (the parent kills the whole group; the session gives it its own
autogroup, so its nice counts against the scanner's session) and exits when the run process is
gone.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing import forkserver
from multiprocessing.connection import Connection

from btpipeline.executors.dagster_internals import (
    DagsterInstance,
    StepRunner,
    capture_interrupts,
    enable_event_batching,
    serializable_error_info_from_exc_info,
    time_event_writes,
)
from btpipeline.executors.forked_server import WORKER_NAME, name_process
from btpipeline.executors.materialization_dedup import (
    is_retry,
    recorded_materializations,
    skip_recorded,
)
from btpipeline.executors.protocol import (
    StepDone,
    StepEvent,
    StepRequest,
    StepSystemError,
    WorkerReady,
    WorkerSpec,
    WorkerStartFailed,
)
from btpipeline.machine import pause_points
from btpipeline.machine.isolation import apply_isolation, current_isolation

PARENT_CHECK_INTERVAL_S = 1.0
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def worker_main(conn: Connection, spec: WorkerSpec) -> None:
    """Process entry point (must stay importable at module level for forkserver pickling)."""
    # Its own session (so its own autogroup, whose nice isolation.py sets) and process group.
    os.setsid()
    name_process(WORKER_NAME)
    _die_with_parent()
    if spec.pause_flags is not None:
        pause_points.install(spec.pause_flags)
    warnings = apply_isolation(spec.isolation)
    enable_event_batching(spec.event_batch_size)
    _watch_parent(spec.parent_pid)
    with capture_interrupts():
        try:
            instance = DagsterInstance.from_ref(spec.instance_ref)
            runner = StepRunner(spec.recon_job, spec.dagster_run, spec.run_config,
                                spec.repository_load_data, spec.retry_mode, instance)
            pop_write_ns = time_event_writes(instance)
        except BaseException:  # noqa: BLE001 - reported to the parent, which fails the run
            error = serializable_error_info_from_exc_info(sys.exc_info())
            conn.send(WorkerStartFailed(spec.worker_id, os.getpid(), error))
            return
        conn.send(WorkerReady(spec.worker_id, os.getpid(), time.monotonic_ns(),
                              current_isolation(), warnings))
        with instance:
            _serve(conn, runner, pop_write_ns, instance, spec.dagster_run.run_id)


def _serve(conn: Connection, runner: StepRunner, pop_write_ns: object,
           instance: DagsterInstance, run_id: str) -> None:
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        undo = _skip_recorded_on_retry(instance, run_id, request)
        try:
            _run_step(conn, runner, request, pop_write_ns)
        finally:
            undo()


def _skip_recorded_on_retry(instance: DagsterInstance, run_id: str, request: StepRequest
                            ) -> Callable[[], None]:
    """On a retried step, skip the materializations its killed attempt already recorded."""
    if not is_retry(request.known_state, request.step_keys):
        return lambda: None
    recorded = recorded_materializations(instance, run_id, request.step_keys)
    return skip_recorded(instance, recorded)


def _run_step(conn: Connection, runner: StepRunner, request: StepRequest, pop_write_ns) -> None:
    received = time.monotonic_ns()
    pop_write_ns()
    send_ns = 0
    try:
        for event in runner.run_steps(request.step_keys, request.known_state):
            start = time.perf_counter_ns()
            conn.send(StepEvent(event.step_key, event))
            send_ns += time.perf_counter_ns() - start
    except BaseException:  # noqa: BLE001 - the parent turns it into a step failure
        conn.send(StepSystemError(request.step_keys,
                                  serializable_error_info_from_exc_info(sys.exc_info())))
    conn.send(StepDone(request.step_keys, received, time.monotonic_ns(), pop_write_ns(), send_ns))


def _die_with_parent() -> None:
    """Ask the kernel for SIGKILL when this worker's parent, the run's forkserver, dies. Unlike
    the watch thread below, this reaches a worker the fast path has stopped (SIGSTOP): SIGKILL
    ends a stopped process too. The forkserver exits once no process holds the write end of
    its "alive" pipe; Python hands that end to every child it forks, so the worker closes its
    copy: then the run process is the only holder, and its death ends the forkserver."""
    _close_forkserver_alive_fd()
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the watch thread still covers a running worker
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGKILL)


def _close_forkserver_alive_fd() -> None:
    server = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass
        server._forkserver_alive_fd = None  # type: ignore[union-attr]


def _watch_parent(parent_pid: int) -> None:
    """Kill this worker's process group once the run process has gone (no orphans)."""

    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK_INTERVAL_S)
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                os.killpg(os.getpgid(0), signal.SIGKILL)
            except PermissionError:
                pass

    threading.Thread(target=watch, name="btpipeline-parent-watch", daemon=True).start()
