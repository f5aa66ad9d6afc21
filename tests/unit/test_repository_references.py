"""The repository stands alone: no file points outside it (a sibling checkout, a machine's
home or work folders), and every test file a docstring, comment or document names exists."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from tests.support import REPO

# Folders that are not the repository's own text: VCS data, caches, local state, build output.
SKIP = {".git", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".venv",
        ".dagster_home", ".btpipeline", "test-artifacts", "build", "dist"}
# Written so that this file does not match itself (``[k]`` is the letter, not the text "[k]").
OUTSIDE = re.compile(r"\.\./shared|/wor[k]/|/home/[a-z]|/Users/[A-Za-z]|/roo[t]/")
TEST_PATH = re.compile(r"\btests/[\w/]+\.py\b")
TEST_NAME = re.compile(r"(?<![/\w])(test_\w+\.py)\b")


def _text_files() -> Iterator[tuple[Path, str]]:
    for path in sorted(REPO.rglob("*")):
        parts = path.relative_to(REPO).parts
        if any(p in SKIP or p.endswith(".egg-info") for p in parts) or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:  # binary (images, databases)
            continue
        yield path, data.decode("utf-8", errors="replace")


def _hits(pattern: re.Pattern[str], keep=lambda match: True) -> list[str]:
    found = []
    for path, text in _text_files():
        for number, line in enumerate(text.splitlines(), 1):
            found += [f"{path.relative_to(REPO)}:{number}: {m.group(0)}"
                      for m in pattern.finditer(line) if keep(m)]
    return found


def test_no_file_points_outside_the_repository() -> None:
    hits = _hits(OUTSIDE)
    assert hits == [], ("These lines point outside the repository: " + "; ".join(hits)
                        + ". Fix: say what the note says in place, or point at a file of the "
                        "repository.")


def test_every_named_test_file_exists() -> None:
    test_files = {p.name for p in (REPO / "tests").rglob("test_*.py")}
    missing = _hits(TEST_PATH, lambda m: not (REPO / m.group(0)).is_file())
    missing += _hits(TEST_NAME, lambda m: m.group(1) not in test_files)
    assert missing == [], ("These lines name test files that do not exist: "
                           + "; ".join(missing) + ". Fix: name the file that holds the test "
                           "now (tests/unit, tests/dagster or tests/system).")
