"""A compute-log manager that captures step output without two ``tail`` processes per step.

Dagster's ``LocalComputeLogManager`` redirects a plan call's stdout/stderr (fd level) into two
files, which the UI's step log viewer reads, and mirrors them back to the terminal by starting
two ``tail -F`` subprocesses (plus two orphan watchers) per ``execute_plan_iterator`` call and
terminating them afterwards: ~60-70 ms a call, the largest part of a warm worker's per-step
cost (benchmarks/executor_overhead.md). :class:`FileComputeLogManager` is that class with only
the capture changed:

- the same files, keys and layout (``<base_dir>/<run_id>/compute_logs/<file_key>.out|.err``)
  and the same ``.complete`` marker when a capture ends, so ``get_log_data``,
  ``is_capture_complete``, ``subscribe`` (the UI's live view) and downloads are Dagster's own,
  unchanged, code;
- stdout/stderr are redirected at the file-descriptor level (``os.dup2``, as Dagster does), so
  output of C extensions and child processes is captured too, and nothing is lost when the
  process is SIGKILLed (the bytes are already in the file);
- the terminal mirror (``mirror_to_terminal``, on by default, like Dagster's) is a thread in
  the same process that copies new bytes of the two files to the original stdout/stderr every
  ``mirror_interval_seconds`` and once more when the capture ends (no subprocess, no sleep on
  teardown). Set it false where nobody reads the terminal (daemon-launched runs).

Enable it in dagster.yaml::

    compute_logs:
      module: btpipeline.executors.compute_logs
      class: FileComputeLogManager
      config: {}   # base_dir defaults to <instance root>/storage, as Dagster's default manager

Every Dagster internal it needs comes through ``dagster_internals``.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Generator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from dagster import DagsterInvariantViolationError, Field, StringSource

from btpipeline.executors import dagster_internals as internals

DEFAULT_MIRROR_INTERVAL_S = 0.2
_CHUNK = 1 << 16


class FileComputeLogManager(internals.LocalComputeLogManager):
    """LocalComputeLogManager's files and markers, captured without subprocesses."""

    def __init__(
        self,
        base_dir: str | None = None,
        polling_timeout: float | None = None,
        mirror_to_terminal: bool = True,
        mirror_interval_seconds: float = DEFAULT_MIRROR_INTERVAL_S,
        inst_data: Any = None,
    ) -> None:
        # base_dir None: resolved from the instance in register_instance (Dagster's default).
        super().__init__(base_dir=base_dir or "", polling_timeout=polling_timeout,
                         inst_data=inst_data)
        self._base_dir_configured = bool(base_dir)
        self.mirror_to_terminal = mirror_to_terminal
        self.mirror_interval_seconds = mirror_interval_seconds

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            "base_dir": Field(StringSource, is_required=False,
                              description="Folder of the captured logs; default "
                              "<instance root directory>/storage (Dagster's default)."),
            "polling_timeout": Field(float, is_required=False),
            "mirror_to_terminal": Field(bool, is_required=False, default_value=True,
                                        description="Also copy captured output to the "
                                        "process's original stdout/stderr (in a thread)."),
            "mirror_interval_seconds": Field(float, is_required=False,
                                             default_value=DEFAULT_MIRROR_INTERVAL_S),
        }

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Mapping[str, Any]
                          ) -> FileComputeLogManager:
        return cls(inst_data=inst_data, **dict(config_value))

    def register_instance(self, instance: Any) -> None:
        super().register_instance(instance)
        if not self._base_dir_configured:
            self._base_dir = os.path.join(instance.root_directory, "storage")

    @contextmanager
    def capture_logs(self, log_key: Sequence[str]) -> Generator[Any, None, None]:
        if not self._base_dir:
            raise DagsterInvariantViolationError(
                "FileComputeLogManager has no base_dir: set one in its config, or use it "
                "through a DagsterInstance.")
        paths = [self.get_captured_local_path(log_key, internals.IO_TYPE_EXTENSION[io])
                 for io in (internals.ComputeIOType.STDOUT, internals.ComputeIOType.STDERR)]
        streams = [sys.stdout, sys.stderr]
        with ExitStack() as stack:
            for path in paths:
                internals.ensure_file(path)
            mirror = None
            if self.mirror_to_terminal:
                mirror = _TerminalMirror(paths, streams, self.mirror_interval_seconds)
                stack.callback(mirror.stop)  # runs after the redirections are undone
            for stream, path in zip(streams, paths, strict=True):
                stack.enter_context(internals.redirect_to_file(stream, path))
            if mirror is not None:
                mirror.start()
            yield internals.CapturedLogContext(log_key)
        internals.touch_file(self.complete_artifact_path(log_key))  # the UI's "capture done" marker


class _TerminalMirror:
    """Copies bytes appended to the capture files to the original stdout/stderr fds.

    The original fds are duplicated before the redirection, so the copies go to the terminal
    (or whatever the process's stdio was) while fds 1/2 point at the files.
    """

    def __init__(self, paths: list[str], streams: list[Any], interval: float) -> None:
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pairs: list[tuple[Any, int]] = []
        for path, stream in zip(paths, streams, strict=True):
            fd = _fileno(stream)
            if fd is None:
                continue
            source = open(path, "rb")  # noqa: SIM115 - closed in stop()
            source.seek(0, os.SEEK_END)
            self._pairs.append((source, os.dup(fd)))

    def start(self) -> None:
        if self._pairs:
            self._thread = threading.Thread(target=self._run, name="btpipeline-log-mirror",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._copy()

    def _copy(self) -> None:
        for source, target in self._pairs:
            while chunk := source.read(_CHUNK):
                try:
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(target, view):]
                except OSError:
                    break  # the terminal went away; the file still has everything

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self._copy()  # what the step wrote since the last pass
        finally:
            for source, target in self._pairs:
                source.close()
                os.close(target)


def _fileno(stream: Any) -> int | None:
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return fd if isinstance(fd, int) else None
