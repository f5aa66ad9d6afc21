"""Every fenced ``bash`` command of the README, in the order written, on a fresh copy of the
repository: a new user's first hour, run for real.

The copy lives in a temporary folder (its ``.dagster_home`` and ``.btpipeline`` are scratch),
``HOME`` is a temporary folder too, and ``btpipeline``, ``dagster`` and ``python3`` run as
``sys.executable -m ...`` with the copy on ``PYTHONPATH``. An ``export`` line changes the
environment of the commands after it, as in one shell. Not run, as the README's "Commands the
tests run" says: ``pip install`` (it would re-point the installed package), ``pytest`` (this
test is part of it), ``dagster dev`` and the Celery workers (long-running servers; their own
tests start them). ``btpipeline scanner`` is started in the background for the rest of its
section, so ``btpipeline status`` after it finds a running scanner.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.postgres import require_postgres

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(1200)]

NOT_RUN = {  # a command starting with this -> why it is not run
    "python3 -m pip install": "re-installs the package: the test runs the copy by PYTHONPATH",
    "python3 -m pytest": "the test suite itself (this test is part of it)",
    "dagster dev": "a long-running server (tests/system/test_dagster_dev_definitions.py)",
    "celery ": "a Celery worker node (tests/system/test_celery_nodes.py)",
    "dagster-celery ": "a Celery worker node (tests/system/test_celery_nodes.py)",
}
BACKGROUND = ("btpipeline scanner",)
TOLERATED = {"CREATE DATABASE dagster": "already exists"}  # "once" commands re-run here
EXECUTABLES = {"btpipeline": "-m btpipeline", "dagster": "-m dagster", "python3": "",
               "python": ""}


@dataclass(frozen=True)
class Command:
    section: str
    text: str


HEREDOC = re.compile(r"<<-?\s*['\"]?(\w+)['\"]?")


def _block_commands(block: str) -> list[str]:
    """One command per line, continuation lines joined, a here-document kept with its command
    (up to its terminator line), comments and blanks dropped."""
    commands: list[str] = []
    lines = iter(block.replace("\\\n", " ").splitlines())
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        heredoc = HEREDOC.search(line)
        if heredoc:
            body = []
            for more in lines:
                body.append(more)
                if more.strip() == heredoc.group(1):
                    break
            line = "\n".join([line, *body])
        commands.append(line)
    return commands


def readme_commands(readme: str) -> list[Command]:
    """The fenced bash commands of each section, in order (see ``_block_commands``)."""
    commands: list[Command] = []
    section = "(top)"
    for block in re.finditer(r"^(## [^\n]*)$|^```bash\n(.*?)^```", readme, re.M | re.S):
        if block.group(1):
            section = block.group(1)[3:].strip()
            continue
        commands += [Command(section, text) for text in _block_commands(block.group(2))]
    return commands


def _split_and(text: str) -> list[str]:
    return [part.strip() for part in text.split(" && ")]


def reason_not_run(text: str) -> str | None:
    for prefix, why in NOT_RUN.items():
        if text.startswith(prefix):
            return why
    return None


def _python_forms(text: str) -> str:
    """``btpipeline``/``dagster``/``python3`` at the start of a command (or after ``&&``)."""
    parts = []
    for part in _split_and(text):
        found = re.match(r"((?:\w+=\S*\s+)*)(\S+)(.*)", part)
        if found and found.group(2) in EXECUTABLES:
            assigned, word, rest = found.groups()
            part = f"{assigned}{shlex.quote(sys.executable)} {EXECUTABLES[word]}{rest}"
        parts.append(part)
    return " && ".join(parts)


def _runnable(text: str) -> str:
    """The command without its parts the test does not run (``pip install`` before ``&&``)."""
    return " && ".join(p for p in _split_and(text) if reason_not_run(p) is None)


def _shell(command: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """Run one line in bash and return the environment it leaves (for ``export``)."""
    script = f"{command}\nstatus=$?\nenv -0 > \"$README_ENV_DUMP\"\nexit $status\n"
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def _read_env(dump: Path) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in dump.read_text().split("\0") if "=" in item)
    return {key: value for key, value in pairs if key not in {"_", "SHLVL", "PWD", "OLDPWD"}}


def fresh_copy(target: Path) -> Path:
    """The repository's tracked and untracked-but-not-ignored files, as a clone would have."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=REPO, capture_output=True, text=True,
                            check=True).stdout
    for name in filter(None, listed.split("\0")):
        source, dest = REPO / name, target / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the work tree
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest, follow_symlinks=False)
    return target


def start_environment(copy: Path, home: Path, dump: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BTPIPELINE_", "DAGSTER_")) or k == "BTPIPELINE_TEST_SESSION"}
    env.update(HOME=str(home), PYTHONPATH=str(copy), BROWSER="true",
               DAGSTER_HOME=str(copy / ".dagster_home"), BTPIPELINE_HOME=str(copy / ".btpipeline"),
               README_ENV_DUMP=str(dump))
    return env


def test_readme_parser_finds_the_sections_in_order() -> None:
    commands = readme_commands((REPO / "README.md").read_text())
    sections = list(dict.fromkeys(c.section for c in commands))
    assert sections[0] == "(top)" and "The CLI" in sections and "Market data" in sections
    assert sections.index("The CLI") < sections.index("Market data")
    first = commands[0].text
    assert _runnable(first).startswith("btpipeline demo") and "pip install" not in _runnable(first)


def _run_line(command: Command, env: dict[str, str], copy: Path, dump: Path) -> dict[str, str]:
    shell = _python_forms(_runnable(command.text))
    proc = _shell(shell, env, copy)
    tolerated = next((ok for key, ok in TOLERATED.items() if key in command.text), None)
    if proc.returncode != 0 and not (tolerated and tolerated in proc.stderr):
        raise AssertionError(
            f"README section {command.section!r}: `{command.text}` exited {proc.returncode}"
            f"\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}")
    return _read_env(dump)


def _start_background(command: Command, env: dict[str, str], copy: Path) -> subprocess.Popen:
    argv = [sys.executable, "-m", *shlex.split(command.text, comments=True)]
    proc = subprocess.Popen(argv, cwd=copy, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    status = copy / ".btpipeline" / "scanner" / "status.json"
    deadline = time.monotonic() + 60
    while not status.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert status.exists(), f"`{command.text}` wrote no heartbeat within 60 s"
    return proc


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=30)


def test_every_readme_command_works_in_order(tmp_path: Path) -> None:
    require_postgres()
    copy = fresh_copy(tmp_path / "clone")
    (tmp_path / "home").mkdir()
    dump = tmp_path / "env.dump"
    env = start_environment(copy, tmp_path / "home", dump)
    ran, background, section = [], None, None
    try:
        for command in readme_commands((copy / "README.md").read_text()):
            if command.section != section:
                _stop(background)
                background, section = None, command.section
            if not _runnable(command.text):
                continue
            if command.text.startswith(BACKGROUND):
                background = _start_background(command, env, copy)
            else:
                env = _run_line(command, env, copy, dump)
            ran.append(command.text)
    finally:
        _stop(background)
    assert len(ran) >= 20, ran
