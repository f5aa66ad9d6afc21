"""How an asset reports its errors: our message first in the UI, not a wrapped stack trace."""

from dagster import Failure

from btpipeline.errors import BtPipelineError, ResultsDatabaseUnavailableError


def step_failure(error: BtPipelineError) -> Failure:
    """Bad input fails the same way on every attempt, so it is not retried; a results database
    that stayed unavailable (transient) is left to the op's RetryPolicy."""
    transient = isinstance(error, ResultsDatabaseUnavailableError)
    return Failure(description=f"{type(error).__name__}: {error}",
                   metadata={"error_type": type(error).__name__, "transient": transient},
                   allow_retries=transient)
