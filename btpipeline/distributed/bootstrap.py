"""Celery worker bootstrap: each pool process isolates itself as a backtest_executor worker does.

Nothing here re-implements the executor. The same settings (:class:`ExecutorSettings` with its
``BTPIPELINE_*`` environment overrides), the same core choice (:func:`backtest_cores`: outside
the live scanner's reserve) and the same isolation back-ends (:func:`apply_isolation`) are
applied by Celery's own hooks:

* ``worker_init`` (main process): import the job and what backtest_executor preloads, so pool
  processes fork with them; if the broker does not answer, an error naming the URL and
  ``BTPIPELINE_CELERY_BROKER`` (Celery then keeps retrying); ``worker_ready`` logs the node's
  priority and queues.
* ``worker_process_init`` (every pool process, also replacements): pin to one backtest core
  (pool process *i* -> the *i*-th backtest core, as executor worker *i*), take the node
  priority's nice and scheduling class, optional RLIMIT_AS; log one ``btpipeline isolation``
  line with what the kernel actually gave.
* ``task_prerun`` / ``task_postrun``: one line per Dagster step with its key, so a worker's
  log shows which steps it ran.

The memory limit (``backtest_worker_memory_limit_mb``) is Celery's ``worker_max_memory_per_child``
(set by ``celery_app``): a pool process whose RSS is over it after a task is replaced. Celery
does not stop a task midway; for a hard cap set ``BTPIPELINE_WORKER_RLIMIT_AS_MB`` (the step
then fails with a ``MemoryError``, as under backtest_executor).

The main process keeps its default priority: it holds the broker connection and heartbeats,
which must not starve under SCHED_IDLE.
"""

import importlib
import logging
import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

from billiard.process import current_process
from celery import Celery, signals

from btpipeline.distributed.broker import BROKER_ENV, check_reachable
from btpipeline.distributed.queues import base_queue, node_priority, priority_queues
from btpipeline.errors import BrokerUnreachable
from btpipeline.machine.cores import backtest_cores
from btpipeline.machine.executor_settings import ExecutorSettings, forkserver_preload
from btpipeline.machine.isolation import IsolationSpec, apply_isolation, current_isolation
from btpipeline.machine.priority import JobPriority

logger = logging.getLogger("btpipeline.distributed")

_app: Celery | None = None
_task_started: dict[str, float] = {}


def execution_config() -> ExecutorSettings:
    """The backtest_executor settings of this machine: defaults + ``BTPIPELINE_*`` overrides."""
    return ExecutorSettings.from_env({})


def memory_limit_kib(cfg: ExecutorSettings) -> int | None:
    """``worker_max_memory_per_child`` (KiB) for ``backtest_worker_memory_limit_mb`` (0: off)."""
    return cfg.backtest_worker_memory_limit_mb * 1024 or None


def served_queues(app: Celery) -> list[str]:
    """The queues this worker consumes (``-Q``, else the app's ``task_queues``)."""
    return sorted(app.amqp.queues.consume_from)


def isolation_spec(cfg: ExecutorSettings, priority: JobPriority | None, index: int,
                   available: Iterable[int]) -> IsolationSpec:
    """What pool process ``index`` applies: the executor's core choice and priority mapping."""
    cores = backtest_cores(cfg, sorted(available))
    pin = cfg.worker_affinity_enabled and bool(cores)
    chosen = priority if cfg.worker_priority_enabled else None
    return IsolationSpec(
        cores=(cores[index % len(cores)],) if pin else None,
        nice=chosen.nice if chosen else None,
        sched_policy=chosen.sched_policy if chosen else None,
        rlimit_as_mb=cfg.worker_rlimit_as_mb,
    )


def describe(hostname: str, index: int, priority: JobPriority | None, queues: list[str],
             cfg: ExecutorSettings, warnings: list[str]) -> str:
    """The one log line a pool process writes after isolating itself."""
    now = current_isolation()
    limit = f"{cfg.backtest_worker_memory_limit_mb} MiB RSS" if memory_limit_kib(cfg) else "off"
    rlimit = f"{cfg.worker_rlimit_as_mb} MiB" if cfg.worker_rlimit_as_mb else "off"
    return (
        f"btpipeline isolation: node {hostname} pool process {index} pid {os.getpid()}: "
        f"cores {now['cores']}, nice {now['nice']}, policy {now['sched_policy']}, "
        f"memory limit {limit} (worker_max_memory_per_child), RLIMIT_AS {rlimit}, "
        f"priority {priority.name if priority else 'inherited'} from queues {queues}, "
        f"mode {cfg.execution_mode.value}; refused: {'; '.join(warnings) or 'none'}"
    )


def preload() -> None:
    """Import what a step needs in the main process, before Celery forks its pool processes.

    The modules backtest_executor preloads in its forkserver (``forkserver_preload()``, the
    deployment's list) plus the job itself: each pool process then starts with them in
    memory (shared pages after fork) and its first step skips ~3 s of imports. No instance
    is opened here: database connections must not cross a fork.
    """
    for module in (*forkserver_preload(), "btpipeline.assets.distributed.jobs"):
        try:
            importlib.import_module(module)
        except Exception as error:  # a missing optional module only costs the first step time
            logger.warning("btpipeline: could not preload %s: %s", module, error)
    try:
        from btpipeline.definitions import backtest_celery_job_def

        backtest_celery_job_def()  # builds btpipeline's definitions and resolves the job
    except Exception as error:  # the first step will raise it again, in its run's event log
        logger.warning("btpipeline: could not preload backtest_celery_job: %s", error)


def on_worker_init(**_: Any) -> None:
    """Main worker process, before it connects: preload, and say clearly when the broker does
    not answer. The worker is not stopped then: Celery keeps retrying, so a node may start
    before its broker.
    """
    assert _app is not None, "install(app) was not called"
    preload()
    try:
        check_reachable(_app.conf.broker_url, BROKER_ENV)
    except BrokerUnreachable as error:
        # Celery's logging is not set up yet: this goes to stderr, above Celery's banner.
        logger.error("btpipeline: %s Celery keeps retrying.", error)


def on_worker_ready(sender: Any = None, **_: Any) -> None:
    """Main worker process, ready: which priority this node runs at, for which queues."""
    assert _app is not None, "install(app) was not called"
    queues = served_queues(_app)
    priority = node_priority(queues)
    if priority is None:
        logger.warning(
            "btpipeline: this node serves %s, none of them a btpipeline queue, so it runs no "
            "backtest_celery_job step; start it with -Q %s (or one of %s).", queues,
            base_queue(), sorted(priority_queues().values()))
    logger.info("btpipeline node %s serves %s at priority %s", getattr(sender, "hostname", "?"),
                queues, priority.name if priority else "inherited")


def on_worker_process_init(sender: Any = None, **_: Any) -> None:
    """Every pool process, before its first task: apply the executor's isolation to itself."""
    assert _app is not None, "install(app) was not called"
    cfg = execution_config()
    queues = served_queues(_app)
    priority = node_priority(queues)
    index = int(getattr(current_process(), "index", 0) or 0)
    warnings = apply_isolation(isolation_spec(cfg, priority, index, os.sched_getaffinity(0)))
    logger.info(describe(str(sender), index, priority, queues, cfg, warnings))


def step_keys(kwargs: Mapping[str, Any] | None) -> list[str]:
    """The Dagster step keys in a dagster-celery ``execute_plan`` task's arguments."""
    packed = (kwargs or {}).get("execute_step_args_packed") or {}
    return list(packed.get("step_keys_to_execute") or []) if isinstance(packed, Mapping) else []


def on_task_prerun(task_id: str = "", kwargs: Mapping[str, Any] | None = None,
                   **_: Any) -> None:
    _task_started[task_id] = time.perf_counter()
    logger.info("btpipeline step start: %s (pid %d, task %s)",
                ", ".join(step_keys(kwargs)) or "?", os.getpid(), task_id)


def on_task_postrun(task_id: str = "", kwargs: Mapping[str, Any] | None = None,
                    state: str | None = None, **_: Any) -> None:
    elapsed = time.perf_counter() - _task_started.pop(task_id, time.perf_counter())
    logger.info("btpipeline step done: %s (pid %d, task %s, %s in %.3f s)",
                ", ".join(step_keys(kwargs)) or "?", os.getpid(), task_id, state, elapsed)


def install(app: Celery) -> None:
    """Connect the handlers above for ``app`` (called once by ``celery_app``)."""
    global _app
    _app = app
    signals.worker_init.connect(on_worker_init, weak=False)
    signals.worker_ready.connect(on_worker_ready, weak=False)
    signals.worker_process_init.connect(on_worker_process_init, weak=False)
    signals.task_prerun.connect(on_task_prerun, weak=False)
    signals.task_postrun.connect(on_task_postrun, weak=False)
