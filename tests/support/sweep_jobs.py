"""Sweep jobs with a faulty results database (reconstructable targets for
tests/dagster/test_sweep_job.py): the first chunk's worker SIGKILLed right after it stored its
rows (the retry must leave every combination stored exactly once), and a first chunk whose
write always fails (the sweep must end FAILED with the error), and a first chunk whose worker
is always SIGKILLed before it stores anything (the run status sensor ends that sweep)."""

import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dagster import JobDefinition

from btpipeline.assets.sweeps.jobs import sweep_job
from btpipeline.resources.market_data_store import MarketDataStore
from btpipeline.resources.results_database import ResultsDatabase


class DiesAfterFirstChunk(ResultsDatabase):
    """The real results database; the first chunk write (no ``marker`` file yet) commits,
    then the worker process kills itself before the step can report success."""

    marker: str

    def write_sweep_chunk(self, *, sweep_id: str, chunk: int, run_id: str,
                          rows: Sequence[Mapping[str, Any]]) -> None:
        super().write_sweep_chunk(sweep_id=sweep_id, chunk=chunk, run_id=run_id, rows=rows)
        marker = Path(self.marker)
        if chunk == 0 and not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)


def sweep_kill_job() -> JobDefinition:
    return sweep_job(resources={"market_data": MarketDataStore(),
                                "results_db": DiesAfterFirstChunk.configure_at_launch()})


class FirstChunkNeverStores(ResultsDatabase):
    """The real results database, except that chunk 0's write always raises."""

    def write_sweep_chunk(self, *, sweep_id: str, chunk: int, run_id: str,
                          rows: Sequence[Mapping[str, Any]]) -> None:
        if chunk == 0:
            raise OSError("disk full while storing chunk 0")
        super().write_sweep_chunk(sweep_id=sweep_id, chunk=chunk, run_id=run_id, rows=rows)


def sweep_fail_job() -> JobDefinition:
    return sweep_job(resources={"market_data": MarketDataStore(),
                                "results_db": FirstChunkNeverStores.configure_at_launch()})


class FirstChunkWorkerAlwaysDies(ResultsDatabase):
    """The real results database; chunk 0's worker SIGKILLs itself on every attempt."""

    def write_sweep_chunk(self, *, sweep_id: str, chunk: int, run_id: str,
                          rows: Sequence[Mapping[str, Any]]) -> None:
        if chunk == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        super().write_sweep_chunk(sweep_id=sweep_id, chunk=chunk, run_id=run_id, rows=rows)


def sweep_die_job() -> JobDefinition:
    return sweep_job(resources={"market_data": MarketDataStore(),
                                "results_db": FirstChunkWorkerAlwaysDies.configure_at_launch()})
