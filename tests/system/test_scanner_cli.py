"""`btpipeline scanner` and `btpipeline status` as a user runs them: real subprocesses on a
temporary BTPIPELINE_HOME with generated candles. No wall-clock assertions."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from btpipeline.data.store import CandleStore
from btpipeline.strategies import get_strategy, strategy_names
from tests.support import REPO, btpipeline, project_env

pytestmark = pytest.mark.slow

EPICS = ["EURUSD", "USDJPY"]


def _status_cmd(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "btpipeline", "status"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)


def _wait_for_ticks(path: Path, proc: subprocess.Popen, ticks: int) -> dict:
    deadline = time.monotonic() + 90  # a generous guard against hangs, not a latency check
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"scanner exited early with {proc.returncode}"
        try:
            status = json.loads(path.read_text())
            if status["ticks"] >= ticks:
                return status
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"scanner wrote no heartbeat with {ticks} ticks to {path}")


def _expected_cores() -> list[int]:
    from btpipeline.machine.cores import scanner_reserved_cores
    from btpipeline.machine.executor_settings import ExecutorSettings

    return list(scanner_reserved_cores(ExecutorSettings.from_env({}),
                                       sorted(os.sched_getaffinity(0))))


def _check_heartbeat(status: dict, pid: int) -> None:
    assert status["pid"] == pid and status["stopped"] is False
    assert status["epics"] == EPICS and status["strategies"] == strategy_names()
    assert status["cadence_seconds"] == 0.3 and status["budget_ms"] == 1000.0
    assert 0 < status["p50_ms"] <= status["p99_ms"] <= status["max_ms"]
    assert status["window"] == status["ticks"] and status["last_latency_ms"] > 0
    assert status["last_tick_at"] and status["signals_written"] >= len(EPICS) * 4
    isolation = status["isolation"]
    assert isolation["cores"] == _expected_cores() or isolation["refused"]
    if os.geteuid() == 0:
        assert isolation["nice"] == -10 and not isolation["refused"]
    else:
        assert any("not root" in r for r in isolation["refused"])


def _check_live_signals(db: Path, data: Path) -> None:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("select epic, strategy, bar_timestamp, position, previous, side, "
                            "price, latency_us from live_signals order by id").fetchall()
    assert {(r[0], r[1]) for r in rows} == {(e, s) for e in EPICS for s in strategy_names()}
    assert sum(r[4] is None for r in rows) == len(EPICS) * 4  # one start row per pair
    assert all(r[3] != r[4] for r in rows) and all(r[7] > 0 for r in rows)
    assert all({1: "BUY", -1: "SELL", 0: "FLAT"}[r[3]] == r[5] for r in rows)
    store = CandleStore(data)
    for epic, name, bar, position, _, _, price, _ in rows[-8:]:
        strategy = get_strategy(name)
        params = strategy.make_params()
        bar_ns = int(np.datetime64(bar.replace(" ", "T"), "ns").astype(np.int64))
        bars = store.read_range(epic, bar_ns, bar_ns + 1,
                                warmup_bars=strategy.warmup_bars(params) - 1)
        assert position == int(strategy.target_positions(bars, params)[-1])
        assert price == float(bars.close[-1])


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    environment = project_env(tmp_path_factory.mktemp("scanner"))
    btpipeline("generate", "--epics", ",".join(EPICS), "--start", "2024-01-01",
               "--end", "2024-01-05", env=environment)
    return environment


def test_status_without_a_scanner_says_so(env) -> None:
    proc = _status_cmd(env)
    assert proc.returncode == 1, proc.stderr
    assert "scanner: not running (no heartbeat at" in proc.stdout
    assert "btpipeline scanner" in proc.stdout
    assert "0 queued, 0 running runs; circuit breaker CLOSED" in proc.stdout


def test_scanner_runs_publishes_writes_and_stops_on_sigterm(env) -> None:
    home = Path(env["BTPIPELINE_HOME"])
    status_path = home / "scanner" / "status.json"
    log = (home / "scanner.log").open("w+")
    proc = subprocess.Popen([sys.executable, "-m", "btpipeline", "scanner",
                             "--cadence-seconds", "0.3", "--epics", ",".join(EPICS),
                             "--latency-log", str(home / "latency.csv")],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _check_heartbeat(_wait_for_ticks(status_path, proc, 4), proc.pid)
        running = _status_cmd(env)
        assert running.returncode == 0, running.stdout + running.stderr
        assert "scanner: running" in running.stdout and "p99" in running.stdout
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log.seek(0)
    output = log.read()
    assert "isolation applied:" in output and "SIGTERM: stopping after the current tick" in output
    final = json.loads(status_path.read_text())
    assert final["stopped"] is True and final["pid"] == proc.pid and final["ticks"] >= 4
    assert not list(status_path.parent.glob(".status.json.*"))  # no temp file left behind
    _check_live_signals(home / "live.db", home / "data")
    trace = (home / "latency.csv").read_text().splitlines()
    assert trace[0] == "tick,tick_unix,latency_ms,scan_ms,write_ms,wake_ms,cpu_ms,runq_ms"
    if Path("/proc/thread-self/schedstat").exists():  # the kernel's per-thread CPU / wait
        cpu_ms, runq_ms = (float(v) for v in trace[-1].split(",")[6:8])
        assert cpu_ms > 0 and runq_ms >= 0
    assert len(trace) - 1 == final["ticks"]
    assert float(trace[-1].split(",")[2]) == pytest.approx(final["last_latency_ms"], abs=1e-3)
    stopped = _status_cmd(env)
    assert stopped.returncode == 1 and "scanner: stopped" in stopped.stdout


def test_scanner_without_data_fails_with_the_fix(tmp_path) -> None:
    env = project_env(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "btpipeline", "scanner", "--ticks", "1"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "No candles are stored" in proc.stderr and "btpipeline generate" in proc.stderr
