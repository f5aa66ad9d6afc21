"""The run's pool of warm worker processes: start, assign, retire, kill, replace.

One :class:`Worker` record per process, with a :class:`WorkerStatus`. Each pool slot keeps its
core; a replacement worker takes over the slot (and core) of the one it replaces.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess

import psutil

from btpipeline.executors.protocol import StepRequest, WorkerReady, WorkerSpec
from btpipeline.executors.worker import worker_main
from btpipeline.machine.pause_points import PauseFlags

RETIRE_GRACE_S = 2.0
KILL_JOIN_TIMEOUT_S = 2.0
_MB = 1024 * 1024


class WorkerStatus(enum.Enum):
    STARTING = "starting"  # process started, instance/job not loaded yet
    IDLE = "idle"
    BUSY = "busy"
    RETIRING = "retiring"  # asked to stop after its last step; not given new work
    DEAD = "dead"


@dataclasses.dataclass(slots=True)
class Worker:
    worker_id: int
    slot: int
    core: int | None
    process: BaseProcess
    conn: Connection
    started_ns: int
    status: WorkerStatus = WorkerStatus.STARTING
    pid: int = 0
    ready_ns: int | None = None
    steps_run: int = 0
    step_keys: tuple[str, ...] = ()  # the request it is running (one step or a batch)
    replaces: int | None = None
    retire_deadline: float = 0.0
    ps: psutil.Process | None = None
    children: list[psutil.Process] = dataclasses.field(default_factory=list)
    children_listed_at: float = -1e9  # time.monotonic() of the last listing

    @property
    def startup_ms(self) -> float | None:
        return None if self.ready_ns is None else (self.ready_ns - self.started_ns) / 1e6


class WorkerPool:
    """Small methods over the workers of one run; all calls come from the dispatch loop."""

    def __init__(
        self,
        mp_context: BaseContext,
        make_spec: Callable[[int, int | None], WorkerSpec],
        slot_cores: list[int | None],
        on_start: Callable[[int, PauseFlags], None] | None = None,
        on_exit: Callable[[int], None] | None = None,
    ) -> None:
        self._ctx = mp_context
        self._on_start, self._on_exit = on_start, on_exit  # the load guard's (un)register
        self._make_spec = make_spec
        self._slot_cores = slot_cores
        self._workers: dict[int, Worker] = {}
        self._next_id = 0
        self.replacements = 0

    # -- lifecycle
    def start_all(self) -> None:
        for slot, core in enumerate(self._slot_cores):
            self._spawn(slot, core)

    def _spawn(self, slot: int, core: int | None, replaces: int | None = None) -> Worker:
        worker_id, self._next_id = self._next_id, self._next_id + 1
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        flags = PauseFlags(self._ctx)
        spec = self._make_spec(worker_id, core)._replace(pause_flags=flags.array)
        process = self._ctx.Process(  # type: ignore[attr-defined]
            target=worker_main, args=(child_conn, spec),
            name=f"btpipeline-worker-{worker_id}", daemon=True,
        )
        started = time.monotonic_ns()
        process.start()
        child_conn.close()  # so the parent sees EOF when the worker dies
        worker = Worker(worker_id, slot, core, process, parent_conn, started,
                        pid=process.pid or 0, replaces=replaces)
        self._workers[worker_id] = worker
        if self._on_start and process.pid:
            self._on_start(process.pid, flags)
        return worker

    def mark_ready(self, worker: Worker, ready: WorkerReady) -> None:
        worker.ready_ns, worker.pid = ready.ready_ns, ready.pid
        worker.ps = _ps(ready.pid)
        if worker.status is WorkerStatus.STARTING:
            worker.status = WorkerStatus.IDLE

    def replace(self, worker: Worker) -> Worker:
        """Kill ``worker`` if needed and start a new one in its slot, immediately."""
        self.kill(worker)
        self.replacements += 1
        return self._spawn(worker.slot, worker.core, replaces=worker.worker_id)

    def retire(self, worker: Worker) -> Worker:
        """Ask an idle worker to exit after its last step and start its successor now."""
        _send(worker, None)
        worker.status = WorkerStatus.RETIRING
        worker.retire_deadline = time.monotonic() + RETIRE_GRACE_S
        self.replacements += 1
        return self._spawn(worker.slot, worker.core, replaces=worker.worker_id)

    def kill(self, worker: Worker) -> None:
        """SIGKILL the worker's process group and reap it."""
        if worker.status is WorkerStatus.DEAD:
            return
        _kill_group(worker.process)
        worker.process.join(KILL_JOIN_TIMEOUT_S)
        worker.status = WorkerStatus.DEAD

    def forget(self, worker: Worker) -> None:
        if self._on_exit and worker.process.pid:
            self._on_exit(worker.process.pid)
        worker.conn.close()
        self._workers.pop(worker.worker_id, None)

    def reap_retired(self) -> None:
        for worker in self.with_status(WorkerStatus.RETIRING):
            if not worker.process.is_alive() or time.monotonic() > worker.retire_deadline:
                self.kill(worker)
                self.forget(worker)

    def interrupt_busy(self) -> None:
        """SIGINT busy workers: Dagster raises DagsterExecutionInterruptedError in the step."""
        for worker in self.with_status(WorkerStatus.BUSY):
            try:
                os.kill(worker.process.pid or 0, signal.SIGINT)
            except ProcessLookupError:
                pass

    def shutdown(self) -> None:
        """Stop every worker (idle ones politely) and kill what is left: no orphans."""
        for worker in self.with_status(WorkerStatus.IDLE):
            _send(worker, None)
        for worker in list(self._workers.values()):
            worker.process.join(0.2 if worker.status is WorkerStatus.IDLE else 0)
            self.kill(worker)
            self.forget(worker)

    # -- work
    def assign(self, worker: Worker, request: StepRequest) -> None:
        _send(worker, request)
        worker.status, worker.step_keys = WorkerStatus.BUSY, request.step_keys

    def finish_step(self, worker: Worker) -> None:
        worker.steps_run += len(worker.step_keys)
        worker.step_keys = ()
        if worker.status is WorkerStatus.BUSY:
            worker.status = WorkerStatus.IDLE

    # -- queries
    def with_status(self, status: WorkerStatus) -> list[Worker]:
        return [w for w in self._workers.values() if w.status is status]

    def working_count(self) -> int:
        """Workers that take or will take steps (starting, idle or busy)."""
        return sum(1 for w in self._workers.values() if w.status in (
            WorkerStatus.STARTING, WorkerStatus.IDLE, WorkerStatus.BUSY))

    def live(self) -> list[Worker]:
        return [w for w in self._workers.values() if w.status is not WorkerStatus.DEAD]

    def by_conn(self) -> dict[Connection, Worker]:
        return {w.conn: w for w in self.live()}

    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers.values() if w.process.pid]


#: How often a worker's child processes are re-listed for its memory (a scan of all /proc:
#: at the 10 Hz memory poll it cost the run process more CPU than dispatching did).
CHILDREN_TTL_S = 1.0


def rss_mb(worker: Worker) -> float:
    """Resident memory of the worker and its children, MiB (0 when it is gone). The worker's
    own RSS is read every call; its children are re-listed every ``CHILDREN_TTL_S``."""
    if worker.ps is None:
        return 0.0
    try:
        now = time.monotonic()
        if now - worker.children_listed_at > CHILDREN_TTL_S:
            worker.children = worker.ps.children(recursive=True)
            worker.children_listed_at = now
        total = worker.ps.memory_info().rss
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0.0
    for child in worker.children:
        try:
            total += child.memory_info().rss
        except psutil.Error:  # ended since the listing
            continue
    return total / _MB


def _ps(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


def _send(worker: Worker, message: object) -> None:
    try:
        worker.conn.send(message)
    except (BrokenPipeError, OSError):
        pass  # the worker is gone; the dispatch loop sees EOF and handles it


def _kill_group(process: BaseProcess) -> None:
    pid = process.pid
    if not pid or process.exitcode is not None:
        return
    try:
        os.killpg(pid, signal.SIGKILL)  # the worker leads its own group (worker_main)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        os.kill(pid, signal.SIGKILL)  # before setsid ran, the pid is not a group leader yet
    except ProcessLookupError:
        pass
