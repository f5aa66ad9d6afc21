"""Soak: many short backfills through a real ``dagster dev``; does anything leak?

Starts ``dagster dev`` on a scratch DAGSTER_HOME (the repository's dagster.yaml: run queue,
run monitoring, pools), submits ``--backfills`` short backtests through the Python client
(one strategy, one epic, one month each), waits until every one has ended, lets the daemon
settle, and compares every process of ``dagster dev``'s tree before and after: count, resident
memory and open file descriptors (psutil), plus the backtest pool's claimed slots.

Run from the repository root: ``python benchmarks/soak.py`` (about 10 minutes for 50
backfills; ``--backfills 10`` for a quick look). Prints the markdown kept in soak.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from btpipeline.client import BacktestClient
from btpipeline.machine.tags import BACKTEST_POOL

REPO = Path(__file__).resolve().parent.parent
MONTH = (dt.date(2024, 1, 1), dt.date(2024, 1, 31))


@dataclass(frozen=True)
class Proc:
    role: str
    pid: int
    rss_mb: float
    fds: int


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _role(cmdline: list[str]) -> str:
    text = " ".join(cmdline)
    roles = (("dagster_webserver", "webserver"), ("dagster-webserver", "webserver"),
             ("_daemon", "daemon"), ("api grpc", "code server"),
             ("code-server", "code server proxy"), ("resource_tracker", "mp resource tracker"),
             ("api execute_run", "run worker"), ("multiprocessing", "forkserver/worker"),
             (" dev ", "dagster dev"))
    for needle, role in roles:
        if needle in text:
            return role
    return text[:60]


def _tree(root: psutil.Process) -> list[Proc]:
    found = []
    for proc in [root, *root.children(recursive=True)]:
        try:
            with proc.oneshot():
                found.append(Proc(_role(proc.cmdline()), proc.pid,
                                  proc.memory_info().rss / 2**20, proc.num_fds()))
        except psutil.Error:
            continue
    return found


def _start(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    def child() -> None:  # dagster dev maps SIGTERM to SIGINT: give it SIGINT's default back
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    return subprocess.Popen([sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml",
                             "-p", str(port)], cwd=REPO, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=child)


def _stop(proc: subprocess.Popen) -> None:
    for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_ready(client: BacktestClient, proc: subprocess.Popen, timeout_s: float = 180) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit("dagster dev exited early; see its log. Fix: run it by hand.")
        try:
            client.get_execution_stats()
            return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(2)
    raise SystemExit(f"dagster dev not ready after {timeout_s:.0f} s")


def _run_backfills(client: BacktestClient, count: int, timeout_s: float) -> dict[str, int]:
    ids = [client.submit_backtest("ema_crossover", "EURUSD", *MONTH) for _ in range(count)]
    end, outcome = time.monotonic() + timeout_s, {}
    pending = set(ids)
    while pending and time.monotonic() < end:
        for job_id in list(pending):
            status = client.get_job_status(job_id)["status"]
            if status in ("completed", "failed", "canceled"):
                outcome[status] = outcome.get(status, 0) + 1
                pending.discard(job_id)
        time.sleep(3)
    outcome["unfinished"] = len(pending)
    return outcome


def _claimed_slots(home: str) -> int:
    from dagster import DagsterInstance  # here: the benchmark's own process reads the instance

    with DagsterInstance.from_config(home) as instance:
        info = instance.event_log_storage.get_concurrency_info(BACKTEST_POOL)
        return int(info.active_slot_count) if info else 0


def _report(before: list[Proc], after: list[Proc], outcome: dict[str, int], wall: float,
            slots: int, count: int) -> str:
    lines = [f"{count} backfills (ema_crossover, EURUSD, 2024-01) in {wall:.0f} s: {outcome}; "
             f"backtest pool slots still claimed afterwards: {slots}", "",
             "| process | before: count | RSS MB | fds | after: count | RSS MB | fds |",
             "|---|---|---|---|---|---|---|"]
    for role in sorted({p.role for p in before + after}):
        b = [p for p in before if p.role == role]
        a = [p for p in after if p.role == role]
        lines.append(f"| {role} | {len(b)} | {sum(p.rss_mb for p in b):.0f} | "
                     f"{sum(p.fds for p in b)} | {len(a)} | {sum(p.rss_mb for p in a):.0f} | "
                     f"{sum(p.fds for p in a)} |")
    lines.append(f"| **all** | {len(before)} | {sum(p.rss_mb for p in before):.0f} | "
                 f"{sum(p.fds for p in before)} | {len(after)} | "
                 f"{sum(p.rss_mb for p in after):.0f} | {sum(p.fds for p in after)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backfills", type=int, default=50)
    parser.add_argument("--settle-seconds", type=float, default=40.0,
                        help="wait after the last backfill before the 'after' snapshot")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="btp-soak-"))
    home = scratch / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)  # dagster.yaml's storage folder is read from it
    env = {**os.environ, "BTPIPELINE_HOME": str(scratch / "btp")}
    subprocess.run([sys.executable, "-m", "btpipeline", "generate", "--epics", "EURUSD",
                    "--start", "2023-12-01", "--end", "2024-01-31"], env=env, check=True,
                   capture_output=True)
    port = _free_port()
    proc = _start(env, port, scratch / "dagster_dev.log")
    try:
        client = BacktestClient(port=port)
        _wait_ready(client, proc)
        time.sleep(args.settle_seconds)  # code server and daemon threads up
        before = _tree(psutil.Process(proc.pid))
        started = time.monotonic()
        outcome = _run_backfills(client, args.backfills, timeout_s=60.0 * args.backfills)
        wall = time.monotonic() - started
        time.sleep(args.settle_seconds)
        after = _tree(psutil.Process(proc.pid))
        print(_report(before, after, outcome, wall, _claimed_slots(str(home)), args.backfills))
    finally:
        _stop(proc)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
