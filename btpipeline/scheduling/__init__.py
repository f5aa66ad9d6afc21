"""Run-queue policy beyond Dagster's own: per-priority caps on queued runs (backpressure) and
``btpipeline/deadline`` handling (boost runs near their deadline, flag runs that will miss)."""
