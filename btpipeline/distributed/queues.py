"""Run priority -> Celery queue, and a node's priority from the queues it serves.

dagster-celery sends every step to one queue (the ``dagster-celery/queue`` op tag, else the
app's ``task_default_queue``). btpipeline gives each :class:`JobPriority` its own queue, so
the nodes serving ``backtests-bulk`` can run at nice 19 / SCHED_IDLE while those serving
``backtests-critical`` run at nice 0: a node's scheduling is fixed when its processes start,
so it is the queue, not the message, that carries the priority to the right kind of node.
Names below are for the default ``BTPIPELINE_CELERY_QUEUE=backtests``.

=============  ======================  =====  ===========
JobPriority    Celery queue            nice   policy
=============  ======================  =====  ===========
CRITICAL       backtests-critical      0      SCHED_OTHER
HIGH           backtests-high          0      SCHED_OTHER
NORMAL         backtests               5      SCHED_OTHER
LOW            backtests-low           10     SCHED_BATCH
BULK           backtests-bulk          19     SCHED_IDLE
=============  ======================  =====  ===========
"""

import os
from collections.abc import Iterable, Mapping

from btpipeline.errors import UnknownNodePriority
from btpipeline.machine.priority import JobPriority

NODE_PRIORITY_ENV = "BTPIPELINE_CELERY_NODE_PRIORITY"
QUEUE_ENV = "BTPIPELINE_CELERY_QUEUE"
DEFAULT_QUEUE = "backtests"

_SUFFIXES = {
    JobPriority.CRITICAL: "-critical",
    JobPriority.HIGH: "-high",
    JobPriority.NORMAL: "",
    JobPriority.LOW: "-low",
    JobPriority.BULK: "-bulk",
}


def base_queue(environ: Mapping[str, str] | None = None) -> str:
    """The NORMAL queue's name, ``$BTPIPELINE_CELERY_QUEUE`` else ``backtests``; the other
    priorities append ``-critical``, ``-high``, ``-low``, ``-bulk``. Give each deployment
    sharing one broker its own name (the workers and the runs must agree)."""
    env = os.environ if environ is None else environ
    return (env.get(QUEUE_ENV) or "").strip() or DEFAULT_QUEUE


def priority_queues(environ: Mapping[str, str] | None = None) -> dict[JobPriority, str]:
    """Every priority's queue name."""
    base = base_queue(environ)
    return {priority: base + suffix for priority, suffix in _SUFFIXES.items()}


def queue_for(priority: JobPriority, environ: Mapping[str, str] | None = None) -> str:
    """The Celery queue a run of ``priority`` sends its steps to."""
    return priority_queues(environ)[priority]


def node_priority(queues: Iterable[str], environ: Mapping[str, str] | None = None
                  ) -> JobPriority | None:
    """The priority a worker node runs at: ``$BTPIPELINE_CELERY_NODE_PRIORITY``, else the
    highest priority among the btpipeline queues it serves (a node serving both
    ``backtests-high`` and ``backtests-bulk`` must never slow the HIGH steps down).

    None when the node serves no btpipeline queue (its processes are left as started).
    """
    env = os.environ if environ is None else environ
    named = (env.get(NODE_PRIORITY_ENV) or "").strip().upper()
    if named:
        try:
            return JobPriority[named]
        except KeyError:
            raise UnknownNodePriority(NODE_PRIORITY_ENV, named,
                                      [p.name for p in JobPriority]) from None
    of_queue = {queue: priority for priority, queue in priority_queues(env).items()}
    served = [of_queue[q] for q in queues if q in of_queue]
    return max(served, key=lambda p: p.value) if served else None
