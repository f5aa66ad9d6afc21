"""Faults an operator meets at the edges, each checked for the message it gives: full disks
(a real tmpfs), a folder passed as a file, a byte-order mark, an unknown priority, a mistyped
SQLite path, umask 000."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, execute_job, reconstructable

from btpipeline.definitions import backtest_job_def
from btpipeline.errors import ResultsDatabaseError, ResultsDiskFullError
from btpipeline.resources.results_database import ResultsDatabase
from tests.support import REPO, btpipeline, project_env
from tests.system.faults.private_postgres import skip_or_fail
from tests.system.faults.results_helpers import write


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs: a disk that fills up for real."""
    mount = tmp_path / "small_disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        skip_or_fail(f"cannot mount a tmpfs ({proc.stderr.strip()})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _cli(*args: str, env: dict[str, str], umask: int | None = None
         ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "btpipeline.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300,
                          preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)


def test_a_full_results_disk_says_so(small_disk: Path) -> None:
    db = ResultsDatabase(url=f"sqlite:///{small_disk / 'results.db'}", retry_seconds=5)
    with pytest.raises(ResultsDiskFullError) as caught:
        for i in range(200):
            write(db, f"run-{i}", scale=1.0 + i)
            db.record_failure(strategy=f"s{i}", epic="EURUSD", partition_keys=["2024-01-01"],
                              run_id="x" * 60, started_at=_t0(), finished_at=_t0(),
                              error="e" * 20000)
    message = str(caught.value)
    assert "free space" in message and "Fix:" in message, message
    assert "server is running" not in message
    db.dispose()


def _t0():
    from tests.system.faults.results_helpers import T0

    return T0


def test_a_full_candle_disk_says_so_without_a_traceback(small_disk: Path, tmp_path) -> None:
    env = {**project_env(tmp_path), "BTPIPELINE_DATA_DIR": str(small_disk / "data")}
    proc = _cli("generate", "--epics", "EURUSD,GBPUSD", "--start", "2024-01-01", "--end",
                "2024-06-30", env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "No space left" in proc.stderr and "Fix:" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_importing_a_folder_names_it_without_a_traceback(tmp_path) -> None:
    env = project_env(tmp_path)
    proc = _cli("import", str(tmp_path), "--epic", "EURUSD", env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "is a folder, not a CSV file" in proc.stderr and "Fix:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_histdata_file_with_a_byte_order_mark_imports(tmp_path) -> None:
    env = project_env(tmp_path)
    lines = [f"20240102 {h:02d}{m:02d}00;1.1000;1.1010;1.0990;1.1005;0"
             for h in range(1, 3) for m in range(60)]
    path = tmp_path / "DAT_ASCII_EURUSD_M1_2024.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode() + b"\n")
    proc = _cli("import", str(path), "--epic", "EURUSD", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "120" in proc.stdout, proc.stdout


def test_a_mistyped_sqlite_path_fails_instead_of_creating_a_folder(tmp_path) -> None:
    typo = tmp_path / "reslts" / "results.db"
    with pytest.raises(ResultsDatabaseError, match="does not exist") as caught:
        ResultsDatabase(url=f"sqlite:///{typo}").count_rows()
    assert "Fix:" in str(caught.value)
    assert not typo.parent.exists()


def test_folders_created_under_umask_000_are_not_world_writable(tmp_path) -> None:
    env = project_env(tmp_path)
    proc = _cli("generate", "--epics", "EURUSD", "--start", "2024-01-01", "--end", "2024-01-31",
                env=env, umask=0)
    assert proc.returncode == 0, proc.stderr
    created = [p for p in (tmp_path / "btp").rglob("*") if p.is_dir()]
    assert created
    wide = [str(p) for p in created if p.stat().st_mode & stat.S_IWOTH]
    assert wide == []


def test_an_unknown_priority_fails_the_run_at_once_naming_the_choices(tmp_path,
                                                                       monkeypatch) -> None:
    env = project_env(tmp_path)
    btpipeline("generate", "--epics", "EURUSD", "--start", "2024-01-01", "--end", "2024-01-31",
               env=env)
    for name in ("DAGSTER_HOME", "BTPIPELINE_HOME"):
        monkeypatch.setenv(name, env[name])
    instance = DagsterInstance.get()
    with execute_job(reconstructable(backtest_job_def), instance=instance,
                     tags={"btpipeline/priority": "URGENT", "dagster/partition": "2024-01-01",
                           "btpipeline/test": uuid.uuid4().hex},
                     asset_selection=[AssetKey(["backtest", "macd_crossover", "EURUSD"])],
                     raise_on_error=False) as result:
        assert not result.success
        text = "\n".join(str(e.event_specific_data) for e in result.all_events if e.is_failure)
    assert "URGENT" in text and "CRITICAL, HIGH, NORMAL, LOW, BULK" in text, text
    instance.dispose()
