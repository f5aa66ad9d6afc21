"""How ``sweep_job``'s steps hand values to each other: pickled files in the instance's
storage folder, laid out as Dagster's ``fs_io_manager`` lays them out
(``<storage>/<run_id>/<step_key>/<output>[/<mapping_key>]``, so a re-execution finds its parent
run's outputs where it always did), without that manager's debug log event per stored output
and per loaded input: nine of a 100-combination sweep's ~70 event-log writes, all of them on
the steps' critical path. Each file is written to a temporary name and renamed, so a killed
step never leaves half a file behind.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

from dagster import (
    InitResourceContext,
    InputContext,
    IOManager,
    OutputContext,
    io_manager,
)

SWEEP_IO = "sweep_io"


class SweepStepIO(IOManager):
    """Pickles step outputs under ``base_dir`` by their run, step, output and mapping key."""

    def __init__(self, base_dir: str) -> None:
        self._base = Path(base_dir)

    def _path(self, context: InputContext | OutputContext) -> Path:
        return self._base.joinpath(*context.get_identifier())

    def handle_output(self, context: OutputContext, obj: object) -> None:
        path = self._path(context)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        partial.write_bytes(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(partial, path)

    def load_input(self, context: InputContext) -> object:
        return pickle.loads(self._path(context).read_bytes())


@io_manager(description="sweep_job's step outputs as pickled files in the instance's storage "
            "folder (fs_io_manager's layout, without its per-file log events).")
def sweep_step_io(init_context: InitResourceContext) -> SweepStepIO:
    instance = init_context.instance
    if instance is None:
        raise RuntimeError("sweep_io needs a Dagster instance (its storage folder). Fix: run "
                           "sweep_job through execute_job, the CLI or the UI.")
    return SweepStepIO(instance.storage_directory())
