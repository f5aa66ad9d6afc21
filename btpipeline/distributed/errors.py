"""Errors of the Celery deployment; messages name the URL, the variable to set and the fix."""

from btpipeline.errors import BtPipelineError


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
