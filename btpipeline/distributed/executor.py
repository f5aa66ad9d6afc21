"""``backtest_celery``: dagster-celery's executor, with the queue chosen by the run's priority.

dagster-celery picks a step's queue from the ``dagster-celery/queue`` *op* tag, else its app's
``task_default_queue``; it never looks at run tags. Op tags are fixed per asset (one asset,
every run), so they cannot carry a per-run priority. This executor is dagster-celery's
:class:`CeleryExecutor` unchanged except for what it does when a run starts:

* ``task_default_queue`` becomes the queue of the run's priority (``btpipeline/priority``,
  else ``dagster/priority``: :func:`priority_from_tags`, as backtest_executor reads it), unless
  ``config_source.task_default_queue`` is set in the run config. An op's own
  ``dagster-celery/queue`` tag still wins, as in dagster-celery.
* broker and backend default to ``BTPIPELINE_CELERY_BROKER`` / ``BTPIPELINE_CELERY_BACKEND``
  (read in the run process at run time, never written into the job), and an unreachable broker
  fails the run at once with the URL and the variable to set.
* On RabbitMQ, a run whose queue no worker consumes fails at once (:class:`NoWorkerForQueue`)
  instead of waiting: dagster-celery's loop waits for every task it sent, even after the run
  is asked to terminate, so such a run could not be stopped short of SIGKILL.

Message priorities stay dagster-celery's: ``dagster-celery/run_priority`` (run tag) plus
``dagster-celery/priority`` (op tag, default 5) order steps *within* a queue.
"""

import warnings
from collections.abc import Iterator, Mapping
from typing import Any

from celery.exceptions import DuplicateTaskNameWarning
from dagster import (
    Field,
    InitExecutorContext,
    Noneable,
    StringSource,
    executor,
    multiple_process_executor_requirements,
)
from dagster_celery.config import dict_wrapper
from dagster_celery.executor import CELERY_CONFIG, CeleryExecutor, celery_executor

from btpipeline.distributed.broker import (
    BACKEND_ENV,
    BROKER_ENV,
    backend_url,
    broker_url,
    check_reachable,
    consumer_count,
)
from btpipeline.distributed.queues import queue_for
from btpipeline.errors import NoWorkerForQueue
from btpipeline.machine.priority import priority_from_tags

# dagster-celery registers its task on the sending side once per step (celery 5.7 warns each
# time the name repeats); harmless, as the callable is the same function.
warnings.filterwarnings("ignore", category=DuplicateTaskNameWarning, module=r"dagster_celery\.")

BACKTEST_CELERY_CONFIG = {
    **CELERY_CONFIG,
    "broker": Field(Noneable(StringSource), is_required=False,
                    description=f"Celery broker URL. Default: ${BROKER_ENV}, else local RabbitMQ."),
    "backend": Field(Noneable(StringSource), is_required=False,
                     description=f"Celery result backend URL. Default: ${BACKEND_ENV}, else "
                     "rpc://."),
}


class BacktestCeleryExecutor(CeleryExecutor):
    """A :class:`CeleryExecutor` whose default queue follows the run's priority."""

    def __init__(self, base: CeleryExecutor, queue_pinned: bool) -> None:
        super().__init__(retries=base.retries, broker=base.broker, backend=base.backend,
                         include=base.include, config_source=vars(base.config_source))
        self._queue_pinned = queue_pinned

    # The context and plan types live in dagster._core (private); CeleryExecutor leaves them
    # untyped too.
    def execute(self, plan_context: Any, execution_plan: Any) -> Iterator[Any]:
        check_reachable(self.broker, BROKER_ENV)
        check_reachable(self.backend, BACKEND_ENV, role="result backend")
        priority = priority_from_tags(plan_context.dagster_run.tags, strict=True)
        if not self._queue_pinned:
            self.config_source = dict_wrapper(
                {**vars(self.config_source), "task_default_queue": queue_for(priority)})
        queue = vars(self.config_source)["task_default_queue"]
        if consumer_count(self.broker, queue) == 0:
            raise NoWorkerForQueue(queue, priority.name)
        plan_context.log.info(f"backtest_celery: run priority {priority.name} -> Celery queue "
                              f"{queue!r}.")
        return super().execute(plan_context, execution_plan)


@executor(
    name="backtest_celery",
    config_schema=BACKTEST_CELERY_CONFIG,
    requirements=multiple_process_executor_requirements(),
)
def backtest_celery_executor(init_context: InitExecutorContext) -> BacktestCeleryExecutor:
    """dagster-celery's ``celery_executor`` (same config), steps queued by run priority.

    Workers: ``celery -A btpipeline.distributed.celery_app worker -Q <queue>``.
    """
    config = dict(init_context.executor_config)
    config["broker"] = config.get("broker") or broker_url()
    config["backend"] = config.get("backend") or backend_url()
    create = celery_executor.executor_creation_fn
    assert create is not None, "dagster_celery.celery_executor has no creation function"
    base = create(init_context._replace(executor_config=config))
    assert isinstance(base, CeleryExecutor), f"celery_executor built a {type(base).__name__}"
    source = config.get("config_source")
    pinned = isinstance(source, Mapping) and "task_default_queue" in source
    return BacktestCeleryExecutor(base, queue_pinned=pinned)
