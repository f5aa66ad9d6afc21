"""A real ``dagster dev`` for tests: started on a free port, torn down with everything it
started, even when the test fails.

Why the care on shutdown: ``dagster dev`` maps SIGTERM to whatever SIGINT does, and a process
started from a non-interactive shell's background job inherits SIGINT *ignored*, so a plain
SIGTERM would be ignored too. The child therefore gets SIGINT back at its default before
exec. Then: SIGTERM to the process group, a grace period, SIGKILL to the group, and a sweep of
any process still carrying this server's DAGSTER_HOME in its environment (a run or worker that
left the group).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import REPO, free_port, graphql, wait_for_webserver

ASSETS_QUERY = "{ assetNodes { id } }"
SHUTDOWN_GRACE_S = 20.0


@dataclass
class DagsterDev:
    """A running ``dagster dev``: its port, process, log file and DAGSTER_HOME."""

    port: int
    proc: subprocess.Popen
    log: Path
    home: str
    stragglers: list[int] = field(default_factory=list)

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        answer = graphql(self.port, query, variables)
        assert not answer.get("errors"), f"GraphQL errors: {answer['errors']}{self.log_tail()}"
        return answer["data"]

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n--- dagster dev log (tail) ---\n" + "\n".join(text.splitlines()[-lines:])


def _sigint_default() -> None:  # runs in the child between fork and exec
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def processes_with_env(name: str, value: str) -> list[int]:
    """Pids of this user's processes whose environment has ``name=value``."""
    needle = f"{name}={value}".encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes() + b"\0":
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _kill_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _wait_until_group_gone(pgid: int, timeout_s: float = 5.0) -> None:
    """SIGKILL is asynchronous: let the killed members die before looking for stragglers."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def shut_down(server: DagsterDev) -> None:
    """SIGTERM the group, SIGKILL it after the grace period, then sweep stragglers by env."""
    _kill_group(server.proc, signal.SIGTERM)
    try:
        server.proc.wait(timeout=SHUTDOWN_GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    _kill_group(server.proc, signal.SIGKILL)  # children that outlived their parent
    if server.proc.poll() is None:
        server.proc.wait(timeout=10)
    _wait_until_group_gone(server.proc.pid)
    for pid in processes_with_env("DAGSTER_HOME", server.home):
        server.stragglers.append(pid)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _wait_for_assets(server: DagsterDev, timeout_s: float = 90) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        nodes = (graphql(server.port, ASSETS_QUERY).get("data") or {}).get("assetNodes")
        if nodes:
            return
        time.sleep(1)
    raise AssertionError(f"the webserver never listed any asset{server.log_tail()}")


@contextmanager
def dagster_dev(env: Mapping[str, str], log: Path) -> Iterator[DagsterDev]:
    """``dagster dev -w workspace.yaml`` on 127.0.0.1:<free port>, ready when the assets load.

    ``env`` must set DAGSTER_HOME to a folder of this test's own (it marks the processes).
    """
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml",
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_sigint_default)
    server = DagsterDev(port=port, proc=proc, log=log, home=env["DAGSTER_HOME"])
    try:
        wait_for_webserver(port, proc)
        _wait_for_assets(server)
        yield server
    finally:
        shut_down(server)
