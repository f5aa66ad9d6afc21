"""How an asset reports bad input: our message first in the UI, not a wrapped stack trace."""

from dagster import Failure

from btpipeline.errors import BtPipelineError


def step_failure(error: BtPipelineError) -> Failure:
    """Bad input fails the same way on every attempt, so it is not retried."""
    return Failure(description=f"{type(error).__name__}: {error}",
                   metadata={"error_type": type(error).__name__}, allow_retries=False)
