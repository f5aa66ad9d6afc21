"""FileComputeLogManager: Dagster's capture files and markers, no tail process, terminal echo."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from dagster import instance_for_test

from btpipeline.executors.compute_logs import FileComputeLogManager
from tests.support import REPO

FILE_LOGS = {"compute_logs": {"module": "btpipeline.executors.compute_logs",
                              "class": "FileComputeLogManager", "config": {}}}


def test_default_base_dir_is_dagsters_default_layout(tmp_path):
    with instance_for_test(temp_dir=str(tmp_path)) as default_instance:
        expected = default_instance.compute_log_manager.get_captured_local_path(
            ["run", "compute_logs", "abcdefgh"], "out")
    with instance_for_test(temp_dir=str(tmp_path), overrides=FILE_LOGS) as instance:
        manager = instance.compute_log_manager
        assert isinstance(manager, FileComputeLogManager)
        assert manager.get_captured_local_path(
            ["run", "compute_logs", "abcdefgh"], "out") == expected


def test_capture_writes_files_marker_and_mirrors_to_the_terminal(tmp_path):
    """In a fresh process (real fds 1/2): Python and child-process output land in the files
    the UI reads, the capture is marked complete, and the terminal still gets a copy."""
    script = textwrap.dedent(f"""
        import os, sys
        from btpipeline.executors.compute_logs import FileComputeLogManager
        manager = FileComputeLogManager(base_dir={str(tmp_path)!r})
        key = ["run-1", "compute_logs", "abcdefgh"]
        print("before capture", flush=True)
        with manager.capture_logs(key):
            print("python stdout")
            print("python stderr", file=sys.stderr)
            os.system("echo child stdout")
        print("after capture", flush=True)
        data = manager.get_log_data(key)
        assert manager.is_capture_complete(key)
        assert data.stdout.decode() == "python stdout\\nchild stdout\\n", data.stdout
        assert data.stderr.decode() == "python stderr\\n", data.stderr
        print("files ok")
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["before capture", "python stdout", "child stdout",
                                        "after capture", "files ok"]
    assert proc.stderr.splitlines() == ["python stderr"]
    # no tail processes: nothing but the files and the .complete marker
    names = sorted(p.name for p in (tmp_path / "run-1" / "compute_logs").iterdir())
    assert names == ["abcdefgh.complete", "abcdefgh.err", "abcdefgh.out"]


def test_mirror_can_be_turned_off(tmp_path):
    script = textwrap.dedent(f"""
        from btpipeline.executors.compute_logs import FileComputeLogManager
        manager = FileComputeLogManager(base_dir={str(tmp_path)!r}, mirror_to_terminal=False)
        with manager.capture_logs(["r", "compute_logs", "k"]):
            print("only in the file")
        print(open(manager.get_captured_local_path(["r", "compute_logs", "k"], "out")).read(),
              end="")
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "only in the file\n"
