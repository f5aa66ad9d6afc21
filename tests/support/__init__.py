"""Helpers shared by the test layers: the repository root, free ports, project environments,
the CLI and GraphQL of real Dagster processes. Submodules hold the larger helpers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def instance_yaml(home: Path) -> str:
    """The shipped dagster.yaml for an instance in ``home``, its storage's base_dir written as
    that path (not ``{env: DAGSTER_HOME}``), so the test process can open it by path too."""
    text = (REPO / "dagster.yaml").read_text()
    return text.replace("base_dir: {env: DAGSTER_HOME}", f"base_dir: {json.dumps(str(home))}")


def project_env(tmp: Path, **extra: str) -> dict[str, str]:
    """An environment whose Dagster and btpipeline state live under ``tmp``."""
    home = tmp / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(instance_yaml(home))
    env = dict(os.environ)
    env.update(DAGSTER_HOME=str(home), BTPIPELINE_HOME=str(tmp / "btp"), **extra)
    env.pop("BTPIPELINE_RESULTS_URL", None)
    env.pop("BTPIPELINE_DATA_DIR", None)
    return env


def run(args: list[str], env: Mapping[str, str],
        timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a command from the repository root; fail with its output if it fails."""
    proc = subprocess.run(args, cwd=REPO, env=dict(env), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{args} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def btpipeline(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "btpipeline", *args], env)


def graphql(port: int, query: str, variables: dict | None = None, timeout: float = 30) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def wait_for_webserver(port: int, proc: subprocess.Popen, deadline_s: float = 120) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"dagster exited early with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"webserver on port {port} did not answer within {deadline_s} s")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group (dagster dev spawns the webserver, daemon, code servers)."""
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
