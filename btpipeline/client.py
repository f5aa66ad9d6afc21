"""Submit and follow backtests from Python, through the Dagster webserver's GraphQL API.

A backtest request becomes one Dagster **asset backfill** of ``backtest/<strategy>/<EPIC>`` for
every epic over the months covering ``start..end`` (the same backfill the UI launches), tagged
with the request's priority; the daemon then runs it (one run per range, the backtest assets'
``BackfillPolicy.single_run``) and records every month as materialized. Nothing here goes
around Dagster: the client only speaks GraphQL over HTTP to a running ``dagster dev`` (or
``dagster-webserver`` + ``dagster-daemon``), so it works the same against SQLite- or
PostgreSQL-backed instances and from any machine that can reach the webserver::

    from datetime import date
    from btpipeline.client import BacktestClient
    from btpipeline.machine.priority import JobPriority

    client = BacktestClient(host="127.0.0.1", port=3000)
    job_id = client.submit_backtest("macd_crossover", ["EURUSD"], date(2024, 1, 1),
                                    date(2024, 3, 31), priority=JobPriority.HIGH)
    print(client.wait(job_id, timeout=600)["status"])   # "completed"

Requests are validated (strategy, epics, dates, deadline) before anything is sent, so a bad
one raises the matching :mod:`btpipeline.errors` exception and queues nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import Field

from btpipeline.epics import known_epics
from btpipeline.errors import (  # the client's own errors are re-exported from here
    BackfillNotFoundError,
    BacktestTimeoutError,
    DagsterRequestError,
    DagsterUnavailableError,
    InvalidDateRangeError,
    InvalidParameterError,
    UnknownEpicError,
)
from btpipeline.machine.naming import (
    backtest_key_path,
    current_month_key,
    month_key,
)
from btpipeline.machine.priority import JobPriority, priority_from_tags, priority_tags
from btpipeline.machine.protection_state import ProtectionState
from btpipeline.machine.queue_caps import check_room, queue_caps
from btpipeline.machine.settings import SettingsModel
from btpipeline.machine.tags import DEADLINE_TAG
from btpipeline.strategies.registry import get_strategy
from btpipeline.universe import default_universe

__all__ = [
    "DEADLINE_TAG",
    "BackfillNotFoundError",
    "BacktestClient",
    "BacktestTimeoutError",
    "DagsterRequestError",
    "DagsterUnavailableError",
    "default_client",
    "get_execution_stats",
    "get_job_status",
    "submit_backtest",
    "wait",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000


class ClientSettings(SettingsModel):
    """Where the module-level functions' default client finds the Dagster webserver
    (``BTPIPELINE_DAGSTER_HOST``, ``BTPIPELINE_DAGSTER_PORT``)."""

    dagster_host: str = Field(default=DEFAULT_HOST, min_length=1,
                              description="Host of the Dagster webserver.")
    dagster_port: int = Field(default=DEFAULT_PORT, ge=1, le=65535,
                              description="Port of the Dagster webserver.")


#: Normalised statuses after which a backtest never changes again.
TERMINAL_STATUSES = frozenset({"completed", "failed", "canceled"})


# --- GraphQL documents -------------------------------------------------------------------------

_LAUNCH = """
mutation LaunchBacktest($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on PartitionKeysNotFoundError { message }
    ... on PartitionSetNotFoundError { message }
    ... on UnauthorizedError { message }
    ... on InvalidSubsetError { message }
    ... on PipelineNotFoundError { message }
    ... on RunConflict { message }
  }
}"""

_BACKFILL = """
query BacktestStatus($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      id status title numPartitions timestamp endTimestamp
      tags { key value }
      error { message }
      runs { runId status startTime endTime }
      assetBackfillData {
        assetBackfillStatuses {
          ... on AssetPartitionsStatusCounts {
            assetKey { path }
            numPartitionsTargeted numPartitionsInProgress
            numPartitionsMaterialized numPartitionsFailed
          }
        }
      }
    }
    ... on BackfillNotFoundError { message }
    ... on PythonError { message }
  }
}"""

_QUEUE = """
query QueuedWork {
  runsOrError(filter: {statuses: [QUEUED, NOT_STARTED]}) {
    __typename ... on Runs { results { tags { key value } } } ... on PythonError { message }
  }
  partitionBackfillsOrError(status: REQUESTED) {
    __typename
    ... on PartitionBackfills { results { numCancelable tags { key value } runs { runId } } }
    ... on PythonError { message }
  }
}"""

BREAKER_QUERY = """
query BreakerState {
  assetOrError(assetKey: {path: ["machine_health"]}) {
    __typename
    ... on Asset { assetObservations(limit: 1) {
      timestamp metadataEntries { label ... on JsonMetadataEntry { jsonString }
                                  ... on FloatMetadataEntry { floatValue } } } }
  }
}"""

STEP_FAILURES_QUERY = """
query StepFailures($runId: ID!) {
  logsForRun(runId: $runId) {
    __typename
    ... on EventConnection { events { __typename
      ... on ExecutionStepFailureEvent { stepKey message error { message className } } } }
    ... on PythonError { message }
  }
}"""

#: The server machine's figures in a ``machine_health`` observation -> the client's names.
MACHINE_FIGURES = {"cpu_fraction": "cpu_percent", "memory_fraction": "memory_percent",
                   "cpu_pressure_avg10": "cpu_pressure_avg10",
                   "memory_pressure_avg10": "memory_pressure_avg10",
                   "scanner_p99_ms": "scanner_p99_ms"}

_RUN_COUNTS = """
query RunCounts($queued: [RunStatus!], $running: [RunStatus!]) {
  queued: runsOrError(filter: {statuses: $queued}) {
    __typename ... on Runs { count } ... on PythonError { message }
  }
  running: runsOrError(filter: {statuses: $running}) {
    __typename ... on Runs { count } ... on PythonError { message }
  }
}"""

# Dagster status -> the client's five statuses (queued / running / completed / failed / canceled).
_RUN_STATUS = {
    "QUEUED": "queued", "NOT_STARTED": "queued", "MANAGED": "queued",
    "STARTING": "running", "STARTED": "running", "CANCELING": "running",
    "SUCCESS": "completed", "FAILURE": "failed", "CANCELED": "canceled",
}
_QUEUED_RUNS = ["QUEUED", "NOT_STARTED"]
_ACTIVE_RUNS = ["STARTING", "STARTED", "CANCELING"]


# --- validation (pure, before any request) -----------------------------------------------------

def _as_date(value: dt.date, name: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    raise InvalidParameterError(
        f"{name} must be a datetime.date, got {type(value).__name__} {value!r}. "
        f"Fix: pass e.g. date(2024, 1, 1).")


def _epic_names(epics: str | Iterable[str]) -> list[str]:
    """Validated epic names, in order, without duplicates; accepts ``"EUR/USD"`` spellings."""
    raw = [epics] if isinstance(epics, str) else list(epics)
    known = known_epics()
    if not raw:
        raise InvalidParameterError(
            f"No epics given. Expected at least one of {', '.join(known)}. "
            "Fix: pass e.g. epics=['EURUSD'].")
    names: list[str] = []
    for item in raw:
        name = str(item).replace("/", "").strip().upper()
        if name not in known:
            raise UnknownEpicError(str(item), list(known))
        if name not in names:
            names.append(name)
    return names


def month_range(start: dt.date, end: dt.date) -> tuple[str, str]:
    """First and last monthly partition keys covering ``start..end``, validated."""
    start, end = _as_date(start, "start"), _as_date(end, "end")
    if start > end:
        raise InvalidDateRangeError(
            f"Inverted date range: start {start} is after end {end}. "
            "Fix: pass start <= end (both days are included).")
    first, last = month_key(start), month_key(end)
    partitions_start = month_key(default_universe().history_start)
    if first < partitions_start:
        raise InvalidDateRangeError(
            f"start {start} is before the first backtest partition ({partitions_start}, the "
            f"universe file's history_start). Fix: start on or after {partitions_start}, or "
            "move history_start earlier.")
    newest = current_month_key()
    if last > newest:
        raise InvalidDateRangeError(
            f"end {end} is in a month that has no partition yet (the newest is {newest}, "
            "the current month). Fix: end on or before today.")
    return first, last


def _deadline_tag(deadline: dt.datetime | None) -> dict[str, str]:
    if deadline is None:
        return {}
    if not isinstance(deadline, dt.datetime):
        raise InvalidParameterError(
            f"deadline must be a datetime.datetime, got {type(deadline).__name__} "
            f"{deadline!r}. Fix: pass e.g. datetime(2024, 5, 1, 18, 0, tzinfo=timezone.utc).")
    aware = deadline if deadline.tzinfo else deadline.replace(tzinfo=dt.timezone.utc)
    if aware <= dt.datetime.now(dt.timezone.utc):
        raise InvalidParameterError(
            f"deadline {aware.isoformat()} has already passed. "
            "Fix: pass a future time (naive datetimes are read as UTC), or none.")
    return {DEADLINE_TAG: aware.astimezone(dt.timezone.utc).isoformat()}


def _priority(priority: JobPriority | str) -> JobPriority:
    if isinstance(priority, JobPriority):
        return priority
    try:
        return JobPriority[str(priority).strip().upper()]
    except KeyError:
        raise InvalidParameterError(
            f"Unknown priority {priority!r}. Expected one of "
            f"{', '.join(p.name for p in JobPriority)}. Fix: pass a JobPriority.") from None


def backfill_params(strategy: str, epics: str | Iterable[str], start: dt.date, end: dt.date,
                    priority: JobPriority | str = JobPriority.NORMAL,
                    deadline: dt.datetime | None = None) -> dict[str, Any]:
    """The ``LaunchBackfillParams`` for a request; raises before anything is sent."""
    get_strategy(strategy)
    names = _epic_names(epics)
    first, last = month_range(start, end)
    tags = {**priority_tags(_priority(priority)), **_deadline_tag(deadline)}
    return {
        "partitionsByAssets": [
            {"assetKey": {"path": backtest_key_path(strategy, epic)},
             "partitions": {"range": {"start": first, "end": last}}}
            for epic in names
        ],
        "tags": [{"key": k, "value": v} for k, v in tags.items()],
        "title": f"{strategy} {','.join(names)} {first[:7]}..{last[:7]}",
    }


# --- reading answers ---------------------------------------------------------------------------

def _normalise_backfill(raw: str, partitions: Mapping[str, int], runs: list[dict]) -> str:
    if raw in ("COMPLETED_SUCCESS", "COMPLETED"):
        return "failed" if partitions["failed"] else "completed"
    if raw in ("COMPLETED_FAILED", "FAILED"):
        return "failed"
    if raw == "CANCELED":
        return "canceled"
    started = any(r["status"] != "queued" for r in runs)
    return "running" if started or raw in ("CANCELING", "FAILING") else "queued"


def _asset_counts(backfill: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    statuses = (backfill.get("assetBackfillData") or {}).get("assetBackfillStatuses") or []
    return {
        "/".join(s["assetKey"]["path"]): {
            "total": s["numPartitionsTargeted"], "done": s["numPartitionsMaterialized"],
            "failed": s["numPartitionsFailed"], "in_progress": s["numPartitionsInProgress"],
        }
        for s in statuses if "assetKey" in s
    }


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).isoformat()


def _status_dict(backfill: Mapping[str, Any]) -> dict[str, Any]:
    assets = _asset_counts(backfill)
    partitions = {k: sum(a[k] for a in assets.values())
                  for k in ("total", "done", "failed", "in_progress")}
    runs = [{"run_id": r["runId"], "status": _RUN_STATUS.get(r["status"], r["status"].lower()),
             "dagster_status": r["status"], "started_at": _iso(r.get("startTime")),
             "ended_at": _iso(r.get("endTime"))} for r in backfill.get("runs") or []]
    tags = {t["key"]: t["value"] for t in backfill.get("tags") or []}
    return {
        "id": backfill["id"],
        "status": _normalise_backfill(backfill["status"], partitions, runs),
        "dagster_status": backfill["status"],
        "title": backfill.get("title"),
        "priority": priority_from_tags(tags).name,
        "deadline": tags.get(DEADLINE_TAG),
        "tags": tags,
        "runs": runs,
        "partitions": partitions,
        "assets": assets,
        "created_at": _iso(backfill.get("timestamp")),
        "ended_at": _iso(backfill.get("endTimestamp")),
        "error": (backfill.get("error") or {}).get("message"),
    }


# --- the client --------------------------------------------------------------------------------

def breaker_state_from(answer: Mapping[str, Any]) -> str:
    """The breaker state in the answer to the breaker query: the published record the
    resource monitor recorded in its latest ``machine_health`` observation."""
    asset = answer["assetOrError"]
    if asset["__typename"] != "Asset":
        return "unknown"
    for observation in asset["assetObservations"][:1]:
        for entry in observation["metadataEntries"]:
            if entry["label"] == "protection" and entry.get("jsonString"):
                return ProtectionState.from_json(entry["jsonString"]).state.value
    return "CLOSED"


def machine_figures_from(answer: Mapping[str, Any]) -> dict[str, Any]:
    """The server machine's figures in the latest ``machine_health`` observation (CPU and
    memory in %, pressure stall avg10 in %, the scanner's p99 in ms) and when they were taken;
    every figure None when the resource monitor has recorded none (it records one at each
    breaker transition)."""
    figures: dict[str, Any] = dict.fromkeys([*MACHINE_FIGURES.values(), "machine_observed_at"])
    asset = answer["assetOrError"]
    if asset["__typename"] != "Asset":
        return figures
    for observation in asset["assetObservations"][:1]:
        figures["machine_observed_at"] = _iso(float(observation["timestamp"]) / 1000)
        for entry in observation["metadataEntries"]:
            name = MACHINE_FIGURES.get(entry["label"])
            if name and entry.get("floatValue") is not None:
                value = float(entry["floatValue"])
                figures[name] = value * 100 if name.endswith("_percent") else value
    return figures


def _fix_of(message: str) -> str | None:
    """The ``Fix: ...`` sentence btpipeline's errors end with, if the message has one."""
    _, found, fix = message.partition("Fix: ")
    return fix.strip().splitlines()[0] if found and fix.strip() else None


def step_failures_from(run_id: str, answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The run's STEP_FAILURE events as ``{run_id, step, error, fix}``."""
    logs = answer["logsForRun"]
    if logs["__typename"] != "EventConnection":
        return [{"run_id": run_id, "step": None, "fix": None,
                 "error": f"could not read the run's events: {logs.get('message')}"}]
    failures = []
    for event in logs["events"]:
        if event["__typename"] != "ExecutionStepFailureEvent":
            continue
        error = (event.get("error") or {}).get("message") or event.get("message") or ""
        failures.append({"run_id": run_id, "step": event.get("stepKey"),
                         "error": error.strip(), "fix": _fix_of(error)})
    return failures


class BacktestClient:
    """Backtests through one Dagster webserver (``dagster dev`` or ``dagster-webserver``)."""

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
                 request_timeout: float = 30.0) -> None:
        self.host, self.port = host, int(port)
        self.request_timeout = request_timeout

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/graphql"

    def __repr__(self) -> str:
        return f"BacktestClient(host={self.host!r}, port={self.port})"

    def submit_backtest(self, strategy: str, epics: str | Iterable[str], start: dt.date,
                        end: dt.date, priority: JobPriority | str = JobPriority.NORMAL,
                        deadline: dt.datetime | None = None) -> str:
        """Queue a backfill of ``strategy`` on every epic over the months covering
        ``start..end`` (both included); return its id (a Dagster backfill id).

        Raises UnknownStrategyError / UnknownEpicError / InvalidDateRangeError /
        InvalidParameterError before anything is sent; QueueFullError when the queue already
        holds its priority's cap of runs (BTPIPELINE_QUEUE_CAP_<PRIORITY>); DagsterRequestError
        if Dagster refuses.
        """
        params = backfill_params(strategy, epics, start, end, priority, deadline)
        check_room(_priority(priority), self._queued_priorities(), queue_caps())
        answer = self._query(_LAUNCH, {"params": params})["launchPartitionBackfill"]
        if answer["__typename"] != "LaunchBackfillSuccess":
            raise DagsterRequestError(
                f"Dagster refused the backfill for {params['title']}: {answer['__typename']}: "
                f"{answer.get('message', '(no message)')}. Fix: check that the webserver at "
                f"{self.url} serves btpipeline's definitions (dagster dev -w workspace.yaml).")
        return str(answer["backfillId"])

    def get_job_status(self, job_id: str) -> dict[str, Any]:
        """The backtest's status (queued/running/completed/failed/canceled), its runs and their
        statuses, and partitions done/total (per asset under ``assets``)."""
        answer = self._query(_BACKFILL, {"id": job_id})["partitionBackfillOrError"]
        kind = answer["__typename"]
        if kind == "BackfillNotFoundError":
            raise BackfillNotFoundError(
                f"No backtest (backfill) with id {job_id!r} on the Dagster instance behind "
                f"{self.url}. Fix: use an id returned by submit_backtest on this instance.")
        if kind != "PartitionBackfill":
            raise DagsterRequestError(f"Could not read backfill {job_id!r}: {kind}: "
                                      f"{answer.get('message', '(no message)')}")
        status = _status_dict(answer)
        status["failures"] = [failure for run in status["runs"] if run["status"] == "failed"
                              for failure in self._step_failures(run["run_id"])]
        if status["failures"] and not status["error"]:
            first = status["failures"][0]
            status["error"] = f"step {first['step']} failed: {first['error']}"
        return status

    def _step_failures(self, run_id: str) -> list[dict[str, Any]]:
        return step_failures_from(run_id, self._query(STEP_FAILURES_QUERY, {"runId": run_id}))

    def wait(self, job_id: str, timeout: float = 600.0, poll: float = 2.0) -> dict[str, Any]:
        """Poll until the backtest is completed, failed or canceled; return its last status.

        Raises BacktestTimeoutError (a TimeoutError) after ``timeout`` seconds. Dagster's
        backfill daemon works in ~30 s passes, so even a small backtest takes about a minute.
        """
        end = time.monotonic() + timeout
        while True:
            status = self.get_job_status(job_id)
            if status["status"] in TERMINAL_STATUSES:
                return status
            if time.monotonic() + poll > end:
                raise BacktestTimeoutError(
                    f"Backtest {job_id} is still {status['status']} after {timeout:.0f} s "
                    f"(partitions {status['partitions']['done']}/"
                    f"{status['partitions']['total']} done). Fix: wait longer, or look at it "
                    f"in the UI (Overview > Backfills).")
            time.sleep(poll)

    def get_execution_stats(self) -> dict[str, Any]:
        """Runs queued and running on the instance, and what the resource monitor published
        about the server machine: the breaker's state (CLOSED / OPEN / HALF_OPEN), CPU and
        memory (%), pressure stall and the scanner's p99 latency, with ``machine_observed_at``
        (None each before the monitor recorded anything). Never the client machine's own."""
        answer = self._query(_RUN_COUNTS, {"queued": _QUEUED_RUNS, "running": _ACTIVE_RUNS})
        counts = {}
        for name in ("queued", "running"):
            if answer[name]["__typename"] != "Runs":
                raise DagsterRequestError(f"Could not count {name} runs: "
                                          f"{answer[name].get('message', '(no message)')}")
            counts[name] = int(answer[name]["count"])
        health = self._query(BREAKER_QUERY, {})
        return {"runs_queued": counts["queued"], "runs_running": counts["running"],
                "breaker_state": breaker_state_from(health), **machine_figures_from(health)}

    def _queued_priorities(self) -> list[JobPriority]:
        """Priorities of the work waiting: queued runs, and backfills whose run is not made."""
        answer = self._query(_QUEUE, {})
        for name in ("runsOrError", "partitionBackfillsOrError"):
            if answer[name]["__typename"] not in ("Runs", "PartitionBackfills"):
                raise DagsterRequestError(f"Could not read the run queue: "
                                          f"{answer[name].get('message', '(no message)')}")
        tag_sets = [r["tags"] for r in answer["runsOrError"]["results"]]
        tag_sets += [b["tags"] for b in answer["partitionBackfillsOrError"]["results"]
                     if not b["runs"]]
        return [priority_from_tags({t["key"]: t["value"] for t in tags}) for tags in tag_sets]

    def _query(self, query: str, variables: Mapping[str, Any]) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": dict(variables)}).encode()
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.request_timeout) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:500]
            raise DagsterRequestError(
                f"The Dagster webserver at {self.url} answered HTTP {error.code}: {detail}"
            ) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise DagsterUnavailableError(
                f"Could not reach the Dagster webserver at {self.url} ({reason}). Fix: start "
                "it (`dagster dev -w workspace.yaml` in the repository, DAGSTER_HOME set) or "
                "pass the host and port it serves on.") from None
        if payload.get("errors"):
            messages = "; ".join(e.get("message", str(e)) for e in payload["errors"])
            raise DagsterRequestError(f"GraphQL errors from {self.url}: {messages}")
        return payload["data"]


# --- module-level convenience (the seed's usage) ------------------------------------------------

def default_client() -> BacktestClient:
    """A client for ``$BTPIPELINE_DAGSTER_HOST:$BTPIPELINE_DAGSTER_PORT`` (127.0.0.1:3000)."""
    where = ClientSettings.from_env()
    return BacktestClient(host=where.dagster_host, port=where.dagster_port)


def submit_backtest(strategy: str, epics: str | Iterable[str], start: dt.date, end: dt.date,
                    priority: JobPriority | str = JobPriority.NORMAL,
                    deadline: dt.datetime | None = None) -> str:
    """:meth:`BacktestClient.submit_backtest` on :func:`default_client`."""
    return default_client().submit_backtest(strategy, epics, start, end, priority, deadline)


def get_job_status(job_id: str) -> dict[str, Any]:
    return default_client().get_job_status(job_id)


def get_execution_stats() -> dict[str, Any]:
    return default_client().get_execution_stats()


def wait(job_id: str, timeout: float = 600.0, poll: float = 2.0) -> dict[str, Any]:
    return default_client().wait(job_id, timeout=timeout, poll=poll)
