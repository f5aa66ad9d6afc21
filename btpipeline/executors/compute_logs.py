"""A compute-log manager that captures step output without two ``tail`` processes per step.

Dagster's ``LocalComputeLogManager`` mirrors a step's stdout/stderr into files (which the UI's
step log viewer reads) AND back to the terminal, by starting two ``tail`` subprocesses per
step and sleeping while it tears them down: ~60-70 ms a step, the largest part of a warm
worker's per-step cost (benchmarks/executor_overhead.md). This subclass writes the very same
files with the same keys and completion markers, so the UI shows the same logs, but skips the
terminal mirror. Structured logs (``context.log``) go to the event log as always.

Enable it in dagster.yaml::

    compute_logs:
      module: btpipeline.executors.compute_logs
      class: FileComputeLogManager
      config: {}          # base_dir defaults to $DAGSTER_HOME/storage, as Dagster's own
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from dagster import Field, StringSource

from btpipeline.executors import dagster_internals as dg


class FileComputeLogManager(dg.LocalComputeLogManager):
    """LocalComputeLogManager's files, written by fd redirection only (no terminal echo)."""

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            "base_dir": Field(StringSource, is_required=False,
                              description="Folder of the captured logs; default "
                              "$DAGSTER_HOME/storage (Dagster's own default)."),
            "polling_timeout": Field(float, is_required=False),
        }

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Mapping[str, Any]
                          ) -> FileComputeLogManager:
        config = dict(config_value)
        config.setdefault("base_dir", os.path.join(os.environ.get("DAGSTER_HOME", "."), "storage"))
        return cls(inst_data=inst_data, **config)

    @contextmanager
    def capture_logs(self, log_key: Sequence[str]) -> Generator[Any, None, None]:
        out = self.get_captured_local_path(log_key, dg.IO_TYPE_EXTENSION[dg.ComputeIOType.STDOUT])
        err = self.get_captured_local_path(log_key, dg.IO_TYPE_EXTENSION[dg.ComputeIOType.STDERR])
        dg.ensure_file(out)
        dg.ensure_file(err)
        with dg.redirect_to_file(sys.stdout, out), dg.redirect_to_file(sys.stderr, err):
            yield dg.CapturedLogContext(log_key)
        dg.touch_file(self.complete_artifact_path(log_key))  # the UI's "capture done" marker
