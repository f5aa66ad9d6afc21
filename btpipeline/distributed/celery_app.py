"""The Celery app btpipeline's worker nodes run: dagster-celery's own app and task, plus the
btpipeline bootstrap (``bootstrap.py``).

Start a node (one per machine, or several per machine with distinct names)::

    celery -A btpipeline.distributed.celery_app worker -Q backtests -n node1@%h \\
        --concurrency 1 --loglevel INFO

The broker and result backend come from ``BTPIPELINE_CELERY_BROKER`` /
``BTPIPELINE_CELERY_BACKEND`` (defaults in ``broker.py``): the Dagster run that sends the steps
reads the same variables, so set them alike everywhere. A node needs the same code, the same
``DAGSTER_HOME`` instance (a shared database such as PostgreSQL across machines) and the same
market data and results database settings as the machine that launches the runs.
"""

from typing import Any

from celery import Celery
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task
from kombu import Exchange, Queue

from btpipeline.distributed import bootstrap
from btpipeline.distributed.broker import backend_url, broker_url
from btpipeline.distributed.queues import base_queue

# dagster-celery declares queues with RabbitMQ's x-max-priority 10; Celery adds it to any queue
# it creates (task_queue_max_priority), on the worker and on the sending side alike.
MAX_PRIORITY = 10


def worker_settings() -> dict[str, Any]:
    """Celery settings of a btpipeline node (Celery's lowercase setting names)."""
    cfg = bootstrap.execution_config()
    return {
        # One step reserved at a time: an idle node takes the next step, not a busy one.
        "worker_prefetch_multiplier": 1,
        # Acknowledge after the step: if a node dies mid-step, the broker redelivers it to
        # another node. (A pool process killed on its own fails its step; no redelivery loop.)
        "task_acks_late": True,
        "worker_max_memory_per_child": bootstrap.memory_limit_kib(cfg),
        "broker_connection_retry_on_startup": True,
        "task_default_queue": base_queue(),
    }


def make_worker_app() -> Celery:
    """dagster-celery's app with btpipeline's broker, backend, settings and default queue."""
    app = make_app({"broker": broker_url(), "backend": backend_url(),
                    "config_source": worker_settings()})
    # Without -Q a node serves the NORMAL queue (dagster-celery's default is "dagster", which
    # backtest_celery_job never uses). Declared exactly as Celery declares a queue it creates
    # on demand, so the sending side and the workers agree on the queue's arguments.
    name = base_queue()
    app.conf.task_queues = [Queue(name, Exchange(name, "direct"), name,
                                  queue_arguments={"x-max-priority": MAX_PRIORITY})]
    return app


app = make_worker_app()
execute_plan = create_task(app)
bootstrap.install(app)
