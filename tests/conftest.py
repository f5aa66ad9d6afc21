"""Shared pytest fixtures, the layer markers, per-layer timeouts, and the process guard.

Layers (by directory): ``tests/unit`` (pure, fast: the inner loop), ``tests/dagster``
(in-process Dagster), ``tests/system`` (real processes, daemons, services, browser). Each test
gets its layer's marker and, unless it sets its own ``@pytest.mark.timeout``, its layer's
timeout.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import URL

from btpipeline.resources.results_database import ResultsDatabase
from btpipeline.results.engine import normalize_url
from tests.support import processes
from tests.support.postgres import PG_TEST_URL, require_postgres

TESTS = Path(__file__).resolve().parent
LAYER_TIMEOUT_S = {"unit": 60, "dagster": 300, "system": 600}
_CLEANED: list[tuple[str, processes.Cleaned]] = []

# Exported before any test starts a process, so every process the session starts carries it.
processes.mark_session()


# ==== BEGIN layers, timeouts and the process guard ====


def layer_of(path: Path) -> str | None:
    """``unit``, ``dagster`` or ``system`` for a test file under that folder of tests/."""
    try:
        first = Path(path).resolve().relative_to(TESTS).parts[0]
    except (ValueError, IndexError):
        return None
    return first if first in LAYER_TIMEOUT_S else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        layer = layer_of(item.path)
        if layer is None:
            continue
        item.add_marker(getattr(pytest.mark, layer))
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(LAYER_TIMEOUT_S[layer]))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A timed-out test says which limit it hit and how to change it."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and "Timeout (>" in str(report.longrepr):
        marker = item.get_closest_marker("timeout")
        limit = marker.args[0] if marker and marker.args else "?"
        report.sections.append(("timeout", (
            f"{item.nodeid} ran longer than its {limit} s timeout (layer "
            f"{layer_of(item.path)}: default {LAYER_TIMEOUT_S.get(layer_of(item.path) or '')} s, "
            "set in tests/conftest.py). Fix: find what it waits for in the stack above, or give "
            "the test @pytest.mark.timeout(<seconds>) if it legitimately needs longer.")))


def sweep(where: str, procs: list) -> None:
    """End ``procs`` and remember them for the end-of-session report."""
    _CLEANED.extend((where, cleaned) for cleaned in processes.end_processes(procs))


@pytest.fixture(autouse=True)
def _processes_started_by_the_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each system test: end the processes it started that outlived it (not those of a
    longer-lived fixture, e.g. a module's ``dagster dev``: they go at session end)."""
    if layer_of(request.path) != "system":
        yield
        return
    before = {p.pid for p in processes.session_processes()}
    yield
    leftovers = [p for p in processes.session_processes()
                 if p.pid not in before and not processes.ancestors(p) & before]
    sweep(request.node.nodeid, leftovers)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    sweep("session end", processes.session_processes())


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not _CLEANED:
        return
    terminalreporter.section("processes left behind by the tests (ended by tests/conftest.py)")
    for where, cleaned in _CLEANED:
        terminalreporter.write_line(f"{where}: {cleaned.describe()}")


# ==== END layers, timeouts and the process guard ====


# ==== BEGIN results-database fixtures (PostgreSQL / results part; keep other fixtures outside) ====


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    """A fresh, empty schema name ``btp_test_<uuid>``, dropped (CASCADE) after the test."""
    require_postgres()
    name = f"btp_test_{uuid.uuid4().hex}"
    yield name
    engine = create_engine(normalize_url(PG_TEST_URL))
    try:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    finally:
        engine.dispose()


def _make_results_db(backend: str, tmp_path: Path, request: pytest.FixtureRequest
                     ) -> ResultsDatabase:
    if backend == "sqlite":
        return ResultsDatabase(url=f"sqlite:///{tmp_path / 'results.db'}")
    schema = request.getfixturevalue("postgres_schema")
    return ResultsDatabase(url=PG_TEST_URL, db_schema=schema)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def results_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ResultsDatabase]:
    """The same ``ResultsDatabase`` API on SQLite (tmp file) and on PostgreSQL (own schema)."""
    db = _make_results_db(request.param, tmp_path, request)
    yield db
    db.dispose()


def _admin_url() -> URL:
    return make_url(PG_TEST_URL).set(drivername="postgresql+psycopg2")


@pytest.fixture
def pg_database() -> Iterator[URL]:
    """A fresh, empty database ``btp_dagster_<uuid>`` for a Dagster instance on PostgreSQL;
    dropped (connections forced) after the test."""
    require_postgres()
    name = f"btp_dagster_{uuid.uuid4().hex}"
    admin = create_engine(_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield _admin_url().set(database=name)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
# ==== END results-database fixtures ====
