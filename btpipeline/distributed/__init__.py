"""Multi-node execution on Dagster's Celery executor (dagster-celery).

* ``celery_app``: the app worker nodes run (``celery -A btpipeline.distributed.celery_app
  worker -Q backtests``), dagster-celery's own task plus the bootstrap.
* ``bootstrap``: each worker process applies backtest_executor's isolation (cores, nice,
  scheduling class, memory limit) through Celery's signals.
* ``queues``: run priority -> queue, and a node's priority from the queues it serves.
* ``executor`` / ``job``: ``backtest_celery_job``, the backtest assets on dagster-celery's
  executor, queue chosen by the run's priority.
* ``broker``: broker/backend URLs from ``BTPIPELINE_CELERY_BROKER`` / ``_BACKEND``.

Importing this package does not import Celery's app (workers import ``celery_app`` themselves).
"""

from btpipeline.distributed.broker import BACKEND_ENV, BROKER_ENV, backend_url, broker_url
from btpipeline.distributed.errors import BrokerUnreachable, DistributedError, NoWorkerForQueue
from btpipeline.distributed.executor import BacktestCeleryExecutor, backtest_celery_executor
from btpipeline.distributed.job import JOB_NAME, backtest_celery_job, backtest_celery_job_def
from btpipeline.distributed.queues import node_priority, priority_queues, queue_for

__all__ = [
    "BACKEND_ENV",
    "BROKER_ENV",
    "JOB_NAME",
    "BacktestCeleryExecutor",
    "BrokerUnreachable",
    "DistributedError",
    "NoWorkerForQueue",
    "backend_url",
    "backtest_celery_executor",
    "backtest_celery_job",
    "backtest_celery_job_def",
    "broker_url",
    "node_priority",
    "priority_queues",
    "queue_for",
]
