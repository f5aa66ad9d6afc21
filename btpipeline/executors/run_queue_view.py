"""What the rest of the instance asks of a running executor: the breaker, and preemption.

Read about once a second by the load guard's thread (one key-value read and one run query,
a few milliseconds on SQLite):

* the circuit breaker's state, as the resource-monitor sensor publishes it
  (``btpipeline/breaker`` in the instance's key-value store, the one record every reader
  uses): while it is OPEN, running executors of sheddable runs pause;
* preemption: a run of this run's priority or lower (LOW / BULK by default) pauses while a
  HIGH or CRITICAL run is queued or running, and resumes when none is left. Pausing keeps
  everything a step has computed (SIGSTOP / SIGCONT), so the step resumes where it stopped:
  nothing lost, nothing run twice.

A queued HIGH run must be able to start while LOW runs are paused: LOW and BULK runs carry
``btpipeline/preemptible=true`` and dagster.yaml caps such runs below ``max_concurrent_runs``
(``tag_concurrency_limits``), so a run slot is always left for them.
"""

from __future__ import annotations

import dataclasses

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from btpipeline.machine.priority import JobPriority, priority_from_tags
from btpipeline.machine.protection_state import CircuitState

ACTIVE = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
          DagsterRunStatus.STARTED]
PREEMPTORS = (JobPriority.CRITICAL, JobPriority.HIGH)
PREEMPTIBLE = (JobPriority.LOW, JobPriority.BULK)


@dataclasses.dataclass(frozen=True)
class QueueFacts:
    breaker_open: bool
    breaker_reason: str
    preemptors: tuple[str, ...]  # run ids of active higher-priority runs

    def reasons(self) -> list[str]:
        out = []
        if self.breaker_open:
            out.append(f"circuit breaker OPEN ({self.breaker_reason or 'no reason given'})")
        if self.preemptors:
            ids = ", ".join(run_id[:8] for run_id in self.preemptors)
            out.append(f"preempted by higher-priority run(s) {ids}")
        return out


def read_queue_facts(instance: DagsterInstance, run_id: str, priority: JobPriority,
                     follow_breaker: bool, preemptible: bool) -> QueueFacts:
    from btpipeline.monitor.queue_control import read_published_protection  # no import cycle

    breaker_open, reason = False, ""
    if follow_breaker:
        breaker = read_published_protection(instance)
        breaker_open, reason = breaker.state is CircuitState.OPEN, breaker.reason
    preemptors: tuple[str, ...] = ()
    if preemptible and priority in PREEMPTIBLE:
        runs = instance.get_runs(filters=RunsFilter(statuses=ACTIVE))
        preemptors = tuple(r.run_id for r in runs if r.run_id != run_id
                           and priority_from_tags(r.tags) in PREEMPTORS)
    return QueueFacts(breaker_open, reason, preemptors)
