"""Fixtures of the fault suite: a private PostgreSQL server, a project folder with candles."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.faults.private_postgres import PrivatePostgres


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of this module alone (tests stop and restart it)."""
    root = Path(tempfile.mkdtemp(prefix="btp-faults-pg-"))  # pytest's tmp is root-only
    try:
        server = PrivatePostgres(root)
        server.start()
        yield server
        server.stop("immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.faults)
