"""Every error the backtest executor raises on purpose.

Each class subclasses the builtin it mirrors (a step over its memory limit is a ``MemoryError``,
a step over its time limit a ``TimeoutError``) and btpipeline's own ``BtPipelineError``, so
callers can catch either. Messages say what happened, the limit, what was used, and the fix.
The base class :class:`ExecutorError` and :class:`ExecutorConfigError` (raised by the settings
model in the machine layer, which cannot import this package) live in :mod:`btpipeline.errors`.

A step failed by the executor (rather than by its own code) carries one of these as its
Dagster failure error: ``cls_name`` in the event log is the class name below.
"""

from __future__ import annotations

from btpipeline.errors import ExecutorError


class WorkerMemoryLimitExceeded(ExecutorError, MemoryError):
    """A worker's resident memory went past ``backtest_worker_memory_limit_mb`` during a step."""

    def __init__(self, step_key: str, pid: int, limit_mb: int, used_mb: float) -> None:
        super().__init__(
            f'Step "{step_key}" used {used_mb:.0f} MiB of resident memory in worker pid {pid}, '
            f"over the backtest_worker_memory_limit_mb limit of {limit_mb} MiB; the worker was "
            "killed and replaced. Fix: reduce the step's memory use (process the data in "
            "chunks, free intermediate frames), or raise backtest_worker_memory_limit_mb in "
            "the executor config (or BTPIPELINE_BACKTEST_WORKER_MEMORY_LIMIT_MB)."
        )
        self.step_key, self.pid, self.limit_mb, self.used_mb = step_key, pid, limit_mb, used_mb


class StepTimeout(ExecutorError, TimeoutError):
    """A step ran longer than its ``btpipeline/timeout_seconds`` op tag allows."""

    def __init__(self, step_key: str, pid: int, timeout_s: float, elapsed_s: float) -> None:
        super().__init__(
            f'Step "{step_key}" was still running after {elapsed_s:.1f} s, over its timeout of '
            f"{timeout_s:g} s (op tag btpipeline/timeout_seconds or the executor's "
            f"default_step_timeout_seconds); worker pid {pid} was killed and replaced. Fix: make "
            "the step faster or split it, or raise the btpipeline/timeout_seconds op tag."
        )
        self.step_key, self.pid = step_key, pid
        self.timeout_s, self.elapsed_s = timeout_s, elapsed_s


class WorkerLost(ExecutorError, ChildProcessError):
    """A worker process died (signal, os._exit, segfault, OOM killer) while running a step."""

    def __init__(self, step_key: str, pid: int, exit_code: int | None) -> None:
        how = _describe_exit(exit_code)
        super().__init__(
            f'Worker pid {pid} died while running step "{step_key}" ({how}); a replacement '
            "worker was started. Events the step wrote before it died are kept. Fix: if the "
            "step is expected to survive a transient crash, give its op a RetryPolicy (and keep "
            "the executor's retries enabled); if the kernel's OOM killer did it, lower the "
            "step's memory use or backtest_worker_memory_limit_mb so the executor stops it first."
        )
        self.step_key, self.pid, self.exit_code = step_key, pid, exit_code


class WorkerStartupError(ExecutorError, RuntimeError):
    """A worker could not open the Dagster instance or rebuild the job."""

    def __init__(self, pid: int, detail: str) -> None:
        super().__init__(
            f"Backtest worker pid {pid} failed to start: {detail}. Fix: check that the job's "
            "code location imports in a fresh Python (the package must be installed, e.g. "
            "`pip install -e .`, because forkserver workers ignore sys.path changes) and that "
            "DAGSTER_HOME points at a readable instance."
        )
        self.pid = pid


class InvalidStepTagError(ExecutorError, ValueError):
    """An op tag the executor reads (timeout, priority) has a value it cannot parse."""

    def __init__(self, step_key: str, tag: str, value: str, expected: str) -> None:
        super().__init__(
            f'Step "{step_key}" has op tag {tag}={value!r}; expected {expected}. Fix: correct '
            "the tag on the op or asset definition."
        )


def _describe_exit(exit_code: int | None) -> str:
    if exit_code is None:
        return "exit status unknown"
    if exit_code < 0:
        import signal

        try:
            name = signal.Signals(-exit_code).name
        except ValueError:
            name = f"signal {-exit_code}"
        return f"killed by {name}"
    return f"exit code {exit_code}"
