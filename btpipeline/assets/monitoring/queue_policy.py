"""One tick of the queue-policy sensor: backpressure caps and deadlines, applied to Dagster's
run queue.

Each tick reads the queued and running runs from the instance and:

* cancels queued runs beyond their priority's cap (newest first), each with a message in its
  event log saying which cap and how to raise it: runs launched from the UI or CLI bypass the
  client's check, and must not pile up unbounded;
* for runs tagged ``btpipeline/deadline``: raises a queued run near its deadline to HIGH
  (``dagster/priority`` 10; the queue daemon re-reads it every pass), and tags runs
  ``btpipeline/deadline_status`` ON_TRACK / BOOST / AT_RISK / MISSED, with an event-log
  message when that changes.
"""

import statistics
from collections.abc import Callable, Sequence

from dagster import DagsterInstance, DagsterRunStatus, RunRecord, RunsFilter

from btpipeline.errors import InvalidParameterError
from btpipeline.machine.deadlines import DEFAULT_ESTIMATE_SECONDS, Verdict, judge, parse_deadline
from btpipeline.machine.priority import JobPriority, priority_from_tags, priority_tags
from btpipeline.machine.queue_caps import over_cap, queue_caps
from btpipeline.machine.tags import BOOSTED_TAG, DEADLINE_STATUS_TAG, DEADLINE_TAG

RUNNING = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]


def enforce_caps(instance: DagsterInstance, queued: Sequence[RunRecord]) -> list[str]:
    """Cancel the queued runs beyond their priority's cap; returns a line per cancel."""
    entries = [(r.dagster_run.run_id, priority_from_tags(r.dagster_run.tags),
                r.create_timestamp.timestamp()) for r in queued]
    by_id = {r.dagster_run.run_id: r.dagster_run for r in queued}
    lines = []
    for run_id, priority, cap in over_cap(entries, queue_caps()):
        message = (f"queue_policy: refused: {priority.name} runs are capped at {cap} queued "
                   f"(BTPIPELINE_QUEUE_CAP_{priority.name}); this run was the newest over "
                   "the cap. Fix: relaunch it once the queue drains, or raise the cap.")
        instance.report_run_canceled(by_id[run_id], message=message)
        lines.append(f"canceled {run_id[:8]} ({priority.name} over cap {cap})")
    return lines


def estimate_seconds(instance: DagsterInstance, job_name: str, limit: int = 20) -> float:
    """Median wall time of the job's recent successful runs (a default with no history)."""
    records = instance.get_run_records(
        filters=RunsFilter(job_name=job_name, statuses=[DagsterRunStatus.SUCCESS]), limit=limit)
    durations = [r.end_time - r.start_time for r in records if r.start_time and r.end_time]
    return statistics.median(durations) if durations else DEFAULT_ESTIMATE_SECONDS


def review_deadline(instance: DagsterInstance, record: RunRecord, now: float,
                    estimate_for: Callable[[str], float]) -> str | None:
    """Judge one run against its deadline; tag it and log on change. Returns a summary line."""
    run = record.dagster_run
    try:
        deadline = parse_deadline(run.tags[DEADLINE_TAG])
    except InvalidParameterError as error:
        if run.tags.get(DEADLINE_STATUS_TAG) != "INVALID":
            instance.add_run_tags(run.run_id, {DEADLINE_STATUS_TAG: "INVALID"})
            instance.report_engine_event(f"queue_policy: {error}", run)
        return f"{run.run_id[:8]} INVALID"
    started = record.start_time if run.status in RUNNING else None
    estimate = estimate_for(run.job_name)
    verdict = judge(now, deadline, estimate, started_at=started)
    tags: dict[str, str] = {}
    boost = started is None and verdict in (Verdict.BOOST, Verdict.AT_RISK)
    if boost and priority_from_tags(run.tags).value < JobPriority.HIGH.value:
        tags.update({**priority_tags(JobPriority.HIGH), BOOSTED_TAG: "true"})
    if run.tags.get(DEADLINE_STATUS_TAG) != verdict.value:
        tags[DEADLINE_STATUS_TAG] = verdict.value
    if tags:
        instance.add_run_tags(run.run_id, tags)
        raised = " Raised to HIGH priority." if BOOSTED_TAG in tags else ""
        instance.report_engine_event(
            f"queue_policy: deadline {run.tags[DEADLINE_TAG]}: {verdict.value} (estimated "
            f"run time {estimate:.0f} s, {deadline - now:.0f} s left).{raised}", run)
    return f"{run.run_id[:8]} {verdict.value}"


def evaluate(instance: DagsterInstance, now: float) -> str:
    """One tick: caps first (a refused run needs no deadline review), then deadlines."""
    queued = instance.get_run_records(filters=RunsFilter(statuses=[DagsterRunStatus.QUEUED]))
    lines = enforce_caps(instance, queued)
    active = instance.get_run_records(
        filters=RunsFilter(statuses=[DagsterRunStatus.QUEUED, *RUNNING]))
    estimates: dict[str, float] = {}  # one history query per job per tick

    def estimate_for(job_name: str) -> float:
        if job_name not in estimates:
            estimates[job_name] = estimate_seconds(instance, job_name)
        return estimates[job_name]

    lines += [line for record in active if DEADLINE_TAG in record.dagster_run.tags
              if (line := review_deadline(instance, record, now, estimate_for))]
    return "; ".join(lines) or f"{len(queued)} queued run(s), all within caps, no deadlines"

