"""A throw-away PostgreSQL server the fault tests may stop and start at will.

It runs from Debian's ``initdb``/``pg_ctl`` on a free port under a tmp folder owned by the
``postgres`` user (initdb refuses to run as root), trust auth on 127.0.0.1 only.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import free_port


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def skip_or_fail(reason: str) -> None:
    """Skip with ``reason``; with CI set the fault must be injected, so fail instead."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so this fault test must run.", pytrace=False)
    pytest.skip(reason)


class PrivatePostgres:
    """``start``/``stop`` a real server; ``url(db)`` for psycopg 3."""

    def __init__(self, root: Path) -> None:
        bin_dir = _bin_dir()
        if bin_dir is None:
            skip_or_fail("no /usr/lib/postgresql/*/bin/pg_ctl on this machine")
        self.bin = bin_dir
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            try:
                pwd.getpwnam(self.user)
            except KeyError:
                skip_or_fail("running as root and there is no 'postgres' user for initdb")
            shutil.chown(root, self.user)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync")

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bin / tool), *args]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"{tool} failed: {proc.stdout}\n{proc.stderr}")
        return proc

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.root} -h 127.0.0.1 -c fsync=off "
                   "-c full_page_writes=off")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-o", options,
                  "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def create_database(self, name: str) -> str:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.url(name)

    def url(self, db: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"
