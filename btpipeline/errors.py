"""Every error btpipeline raises on purpose.

Each class subclasses the builtin it mirrors (a bad parameter is a ``ValueError``, an unknown
name a ``LookupError``) so callers can catch either. Messages say what happened, what was
expected, what was got, and the fix.
"""

from __future__ import annotations


class BtPipelineError(Exception):
    """Base class of every error btpipeline raises deliberately."""


class UnknownStrategyError(BtPipelineError, LookupError):
    """A strategy name that is not in the registry."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(
            f"Unknown strategy {name!r}. Known strategies: {', '.join(sorted(known))}. "
            "Fix: use one of those names (or register the new strategy in "
            "btpipeline/strategies/registry.py)."
        )
        self.name = name


class UnknownEpicError(BtPipelineError, LookupError):
    """An epic (currency pair) that is not in the catalogue."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(
            f"Unknown epic {name!r}. Known epics: {', '.join(sorted(known))}. "
            "Fix: use one of those names, or declare the instrument under `instruments:` in "
            "the universe file (universe.yaml, or the file BTPIPELINE_UNIVERSE names)."
        )
        self.name = name


class SettingsError(BtPipelineError, ValueError):
    """A setting (a model field or its ``BTPIPELINE_*`` environment variable) is invalid."""

    subject = "setting"

    def __init__(self, name: str, expected: str, got: object, fix: str) -> None:
        super().__init__(
            f"Invalid {self.subject} {name!r}: expected {expected}, got {got!r}. Fix: {fix}"
        )
        self.field = name


class ExecutorError(BtPipelineError):
    """Base class of the backtest executor's errors (the classes below it in this module)."""


class StorageFolderMismatchError(SettingsError):
    """A Dagster instance whose storage's ``base_dir`` is not the instance's own folder."""

    subject = "Dagster instance setting"


class ExecutorConfigError(ExecutorError, SettingsError):
    """A backtest_executor setting (run config or ``BTPIPELINE_*`` variable) is invalid."""

    subject = "backtest_executor setting"


class InvalidParameterError(BtPipelineError, ValueError):
    """A strategy, cost or configuration parameter outside its valid range."""


class InvalidDateRangeError(BtPipelineError, ValueError):
    """An inverted or empty date range."""


class MarketDataError(BtPipelineError, ValueError):
    """Base class of market-data problems (import, validation, storage)."""


class DataValidationError(MarketDataError):
    """Candles that break an OHLC rule; names the file (or source) and the row."""

    def __init__(self, source: str, row: int | None, problem: str, fix: str) -> None:
        where = f"{source}, row {row}" if row is not None else source
        super().__init__(f"Invalid market data in {where}: {problem}. Fix: {fix}")
        self.source = source
        self.row = row


class MissingDataError(MarketDataError, FileNotFoundError):
    """No stored candles where a backtest needs them."""


class CorruptDataFileError(MarketDataError):
    """A stored Arrow file that cannot be read or has the wrong schema."""


class ResultsDatabaseError(BtPipelineError, RuntimeError):
    """The results database could not be reached or written; nothing was changed."""


class UniverseError(BtPipelineError, ValueError):
    """The universe file is missing, not YAML, or breaks its schema; names the file, the key
    path, what was expected, what was found and the fix (every problem, one per line)."""


class StrategyError(BtPipelineError, ValueError):
    """A strategy named in the universe that cannot be imported, is not a ``Strategy``, or
    breaks the target-positions contract (one per bar, integers in {-1, 0, 1}, no look-ahead)."""


class ResultsDatabaseUnavailableError(ResultsDatabaseError):
    """A transient results-database fault (connection lost, server restarting, lock timeout,
    deadlock) that outlasted the retry budget; the same call may succeed later."""


class ResultsDiskFullError(ResultsDatabaseError):
    """The results database's disk is full; nothing was changed."""


class RunNotLiveError(BtPipelineError, RuntimeError):
    """A write by a run that Dagster no longer counts as running (failed, canceled): fenced
    off, so the results database never holds rows of a run Dagster says did not happen."""


class StorageFullError(MarketDataError, OSError):
    """The disk holding the candle store is full; the month file being written was not
    replaced (the previous one, if any, is intact)."""


# -- the backtest executor (a step failed by the executor, not by its own code, carries one
#    of these as its Dagster failure error: ``cls_name`` in the event log is the class name)

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
            "`pip install -e .`: with BTPIPELINE_WORKER_START=spawn workers ignore sys.path "
            "changes) and that DAGSTER_HOME points at a readable instance."
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


# -- the Celery deployment (messages name the URL, the variable to set and the fix)

class DistributedError(BtPipelineError):
    """Base class of the errors raised by ``btpipeline.distributed``."""


class BrokerUnreachable(DistributedError, ConnectionError):
    """The Celery broker (or result backend) did not answer."""

    def __init__(self, role: str, url: str, env_var: str, reason: str, example: str) -> None:
        super().__init__(
            f"The Celery {role} at {url} is unreachable ({reason}). Fix: start it, or point "
            f"{env_var} at a running one (e.g. {env_var}={example}), with the same value for "
            "the Celery workers and for the Dagster run."
        )
        self.role, self.url, self.env_var = role, url, env_var


class UnknownNodePriority(DistributedError, LookupError):
    """``BTPIPELINE_CELERY_NODE_PRIORITY`` names no JobPriority."""

    def __init__(self, env_var: str, got: str, known: list[str]) -> None:
        super().__init__(
            f"{env_var}={got!r} is not a priority. Expected one of {', '.join(known)}. "
            f"Fix: set {env_var} to one of those names or unset it (the node then takes the "
            "priority of the queues it serves, -Q)."
        )


class NoWorkerForQueue(DistributedError, RuntimeError):
    """No Celery worker consumes the queue a run would send its steps to."""

    def __init__(self, queue: str, priority: str) -> None:
        super().__init__(
            f"No Celery worker serves queue {queue!r} (run priority {priority}), so the run "
            "fails before sending a step: its steps would wait there, and dagster-celery cannot "
            "terminate a run whose tasks no worker has taken. Fix: start a node for it (celery -A "
            f"btpipeline.distributed.celery_app worker -Q {queue}) or launch the run at a "
            "priority whose queue has one (run tag btpipeline/priority)."
        )
        self.queue = queue


# -- the run queue's backpressure and the Python client

class QueueFullError(BtPipelineError, RuntimeError):
    """The queue already holds as many runs of this priority as its cap allows."""

    def __init__(self, priority: str, queued: int, cap: int, env_var: str) -> None:
        super().__init__(
            f"The run queue is full for {priority} work: {queued} {priority} run(s) queued, "
            f"cap {cap}. Nothing was submitted. Fix: wait for queued runs to start, submit at "
            f"another priority, or raise {env_var}.")
        self.priority, self.queued, self.cap = priority, queued, cap


class DagsterUnavailableError(BtPipelineError, ConnectionError):
    """The Dagster webserver could not be reached."""


class DagsterRequestError(BtPipelineError, RuntimeError):
    """The webserver answered, but refused or failed the request."""


class BackfillNotFoundError(BtPipelineError, LookupError):
    """No backfill with that id on this Dagster instance."""


class BacktestTimeoutError(BtPipelineError, TimeoutError):
    """``wait`` gave up before the backtest reached a final status."""
