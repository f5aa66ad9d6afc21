"""Multi-node execution on Dagster's Celery executor (dagster-celery).

* ``celery_app``: the app worker nodes run (``celery -A btpipeline.distributed.celery_app
  worker -Q backtests``), dagster-celery's own task plus the bootstrap.
* ``bootstrap``: each worker process applies backtest_executor's isolation (cores, nice,
  scheduling class, memory limit) through Celery's signals.
* ``queues``: run priority -> queue, and a node's priority from the queues it serves.
* ``executor``: ``backtest_celery``, dagster-celery's executor with the queue chosen by the
  run's priority; the job that runs on it, ``backtest_celery_job``, is in
  btpipeline.assets.distributed.
* ``broker``: broker/backend URLs from ``BTPIPELINE_CELERY_BROKER`` / ``_BACKEND``.

Importing this package does not import Celery's app (workers import ``celery_app`` themselves).
"""

from btpipeline.distributed.broker import BACKEND_ENV, BROKER_ENV, backend_url, broker_url
from btpipeline.distributed.executor import BacktestCeleryExecutor, backtest_celery_executor
from btpipeline.distributed.queues import node_priority, priority_queues, queue_for
from btpipeline.errors import BrokerUnreachable, DistributedError, NoWorkerForQueue

__all__ = [
    "BACKEND_ENV",
    "BROKER_ENV",
    "BacktestCeleryExecutor",
    "BrokerUnreachable",
    "DistributedError",
    "NoWorkerForQueue",
    "backend_url",
    "backtest_celery_executor",
    "broker_url",
    "node_priority",
    "priority_queues",
    "queue_for",
]
