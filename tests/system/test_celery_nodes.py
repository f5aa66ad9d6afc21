"""Two Celery worker nodes split a backtest backfill run through ``backtest_celery_job``.

The pure routing rules are tested in tests/unit/test_celery_routing.py. This one uses
real services: the RabbitMQ broker on 127.0.0.1:5672 (``BTPIPELINE_CELERY_BROKER``), two
``celery worker`` processes started here as separate process groups ("nodes", concurrency 1
each), and a Dagster instance on disk (SQLite under ``tmp_path``) that the test and both nodes
share. The run covers 4 strategies x EURUSD x 3 months as one single-run backfill (one step
per asset), so both nodes get steps; then a LOW-priority run must go to the one node serving
the LOW queue. Each test uses its own queue names (``BTPIPELINE_CELERY_QUEUE``), so other
workers on the same broker never take its steps.
"""

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    execute_job,
    reconstructable,
)
from kombu import Connection

from btpipeline import universe
from btpipeline.assets.keys import backtest_key
from btpipeline.definitions import backtest_celery_job_def
from btpipeline.distributed.broker import BROKER_ENV, broker_url, check_reachable
from btpipeline.distributed.queues import (
    QUEUE_ENV,
    priority_queues,
)
from btpipeline.errors import BrokerUnreachable
from btpipeline.machine.priority import JobPriority, priority_tags
from btpipeline.machine.tags import RANGE_END_TAG, RANGE_START_TAG
from btpipeline.resources.results_database import ResultsDatabase
from tests.support import REPO, btpipeline, project_env

EPIC = "EURUSD"
MONTHS = ["2024-01-01", "2024-02-01", "2024-03-01"]
NODE_READY_TIMEOUT_S = 60
STEP_DONE = re.compile(r"btpipeline step done: (\S+) \(pid \d+, task \S+, SUCCESS")


# ---------------------------------------------------------------- two real nodes


@dataclass
class Node:
    name: str
    proc: subprocess.Popen
    log: Path

    def text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


def require_broker() -> None:
    """Skip when the broker is down, unless CI is set: then fail loudly."""
    try:
        check_reachable(broker_url(), BROKER_ENV)
    except BrokerUnreachable as error:
        if os.environ.get("CI"):
            pytest.fail(f"{error} CI is set, so the Celery test must run.", pytrace=False)
        pytest.skip(f"{error} (CI unset, so skipping).")


@pytest.fixture
def node_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """One environment for the test process and both nodes: instance, data, own queues."""
    require_broker()
    env = project_env(tmp_path, **{QUEUE_ENV: f"btptest-{uuid.uuid4().hex[:12]}"})
    for name in ("DAGSTER_HOME", "BTPIPELINE_HOME", QUEUE_ENV):
        monkeypatch.setenv(name, env[name])
    btpipeline("generate", "--epics", EPIC, "--start", "2023-12-01", "--end", "2024-03-31",
               env=env)
    return env


def start_node(name: str, queues: list[str], env: dict[str, str], tmp_path: Path) -> Node:
    log = tmp_path / f"{name}.log"
    args = [sys.executable, "-m", "celery", "-A", "btpipeline.distributed.celery_app", "worker",
            "-Q", ",".join(queues), "-n", f"{name}@%h", "--concurrency", "1", "--loglevel", "INFO",
            "--logfile", str(log), "--without-gossip", "--without-mingle", "--without-heartbeat"]
    with open(tmp_path / f"{name}.out", "wb") as out:
        proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return Node(name, proc, log)


def wait_ready(nodes: list[Node], tmp_path: Path) -> None:
    """Until every node logged that it serves its queue (and its pool process isolated)."""
    deadline = time.monotonic() + NODE_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        for node in nodes:
            if node.proc.poll() is not None:
                output = (tmp_path / f"{node.name}.out").read_text()[-3000:]
                raise AssertionError(f"{node.name} exited with {node.proc.returncode}:\n"
                                     f"{output}\n{node.text()[-3000:]}")
        if all("btpipeline node" in n.text() and "btpipeline isolation" in n.text()
               for n in nodes):
            return
        time.sleep(0.2)
    raise AssertionError(f"nodes not ready within {NODE_READY_TIMEOUT_S} s:\n"
                         + "\n".join(f"{n.name}: {n.text()[-2000:]}" for n in nodes))


def stop_node(node: Node) -> None:
    """SIGTERM the node's process group (main process + pool), SIGKILL if it lingers."""
    if node.proc.poll() is None:
        os.killpg(node.proc.pid, signal.SIGTERM)
        try:
            node.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(node.proc.pid, signal.SIGKILL)  # any pool process left behind
    except ProcessLookupError:
        pass
    node.proc.wait()


def delete_queues(env: dict[str, str]) -> None:
    """Remove the test's queues from the broker (deleting an absent queue is a no-op)."""
    with Connection(broker_url(), connect_timeout=3) as conn:
        for queue in priority_queues(env).values():
            conn.default_channel.queue_delete(queue)


@pytest.fixture
def nodes(node_env: dict[str, str], tmp_path: Path) -> Iterator[list[Node]]:
    # Node names must be unique on the broker (Celery's control queue is per name).
    suffix = node_env[QUEUE_ENV].rsplit("-", 1)[-1]
    queues = priority_queues(node_env)
    normal, low = queues[JobPriority.NORMAL], queues[JobPriority.LOW]
    started = [start_node(f"node1-{suffix}", [normal], node_env, tmp_path),
               start_node(f"node2-{suffix}", [normal, low], node_env, tmp_path)]
    try:
        wait_ready(started, tmp_path)
        yield started
    finally:
        for node in started:
            stop_node(node)
        delete_queues(node_env)


def materialized_partitions(instance: DagsterInstance, key: AssetKey) -> list[str]:
    records = instance.fetch_materializations(key, limit=100).records
    events = [r.event_log_entry.dagster_event for r in records]
    return sorted(str(e.partition) for e in events if e is not None)


def celery_hostnames(instance: DagsterInstance, run_id: str) -> set[str]:
    """The ``Celery worker`` of dagster-celery's "Executing steps ... in celery worker" events."""
    hosts = set()
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        metadata = (event.engine_event_data.metadata or {}) if event is not None else {}
        if "Celery worker" in metadata:
            hosts.add(str(metadata["Celery worker"].value))
    return hosts


def failure_text(event: DagsterEvent) -> str:
    """A failure event's message and, when it carries one, its error (type, message, stack)."""
    error = getattr(event.event_specific_data, "error", None)
    return f"{event.message}\n{error.to_string() if error else ''}"


def run_celery_job(instance: DagsterInstance, keys: list[AssetKey], first: str, last: str,
                   tags: dict[str, str] | None = None, succeed: bool = True) -> tuple[str, str]:
    """One run of ``backtest_celery_job`` over ``keys`` x months first..last: run id, errors."""
    with execute_job(reconstructable(backtest_celery_job_def), instance=instance,
                     tags={RANGE_START_TAG: first, RANGE_END_TAG: last, **(tags or {})},
                     asset_selection=keys, raise_on_error=False) as result:
        errors = "\n".join(failure_text(e) for e in result.all_events if e.is_failure)
        assert result.success is succeed, errors or "the run succeeded"
        return result.run_id, errors


def assert_results_rows_once(db_path: Path, strategies: list[str], run_id: str) -> None:
    db = ResultsDatabase(url=f"sqlite:///{db_path}")
    try:
        executions = db.read_executions(epic=EPIC)
    finally:
        db.dispose()
    assert sorted(executions["strategy"]) == sorted(strategies)  # one row each, no duplicate
    assert set(executions["run_id"]) == {run_id} and set(executions["status"]) == {"SUCCESS"}
    assert set(executions["partition_start"]) == {MONTHS[0]}
    assert set(executions["partition_end"]) == {MONTHS[-1]}


def node_steps(nodes: list[Node]) -> dict[str, list[str]]:
    """The step keys each node's log says it ran successfully."""
    return {node.name: STEP_DONE.findall(node.text()) for node in nodes}


def hostname(node: Node) -> str:
    return f"{node.name}@{os.uname().nodename}"


@pytest.mark.slow
@pytest.mark.timeout(180)
# dagster-celery registers its task once per submitted step; Celery 5.7 warns on the repeat.
@pytest.mark.filterwarnings("ignore::celery.exceptions.DuplicateTaskNameWarning")
def test_two_nodes_split_a_backfill_and_materialize_each_partition_once(
        nodes: list[Node], tmp_path: Path) -> None:
    strategies = universe.strategies()
    keys = [backtest_key(s, EPIC) for s in strategies]
    instance = DagsterInstance.get()
    instance.event_log_storage.set_concurrency_slots("backtests", 2)  # both nodes busy at once
    began = time.perf_counter()
    run_id, _ = run_celery_job(instance, keys, MONTHS[0], MONTHS[-1])
    elapsed = time.perf_counter() - began

    for key in keys:
        assert materialized_partitions(instance, key) == MONTHS, key
    assert_results_rows_once(tmp_path / "btp" / "results.db", strategies, run_id)

    steps = node_steps(nodes)
    print(f"run {run_id} took {elapsed:.1f} s; steps per node: {steps}")
    assert all(steps.values()), f"one node ran nothing: {steps}"  # the work was split
    ran = [key for keys_of_node in steps.values() for key in keys_of_node]
    assert sorted(ran) == sorted(k.to_python_identifier() for k in keys), steps  # each once
    assert celery_hostnames(instance, run_id) == {hostname(n) for n in nodes}
    for node in nodes:
        line = next(li for li in node.text().splitlines() if "btpipeline isolation" in li)
        assert re.search(r"cores \[\d+(, \d+)*\], nice \d+, policy \w+, memory limit", line), line

    # A LOW run goes to the LOW queue, which only node2 serves.
    low_run, _ = run_celery_job(instance, keys[:1], MONTHS[0], MONTHS[0],
                                tags=priority_tags(JobPriority.LOW))
    assert celery_hostnames(instance, low_run) == {hostname(nodes[1])}
    assert node_steps(nodes)[nodes[0].name] == steps[nodes[0].name]

    # No node serves the HIGH queue: the run fails at once instead of waiting forever.
    _, errors = run_celery_job(instance, keys[:1], MONTHS[0], MONTHS[0],
                               tags=priority_tags(JobPriority.HIGH), succeed=False)
    assert "No Celery worker serves queue" in errors and "-high" in errors, errors
