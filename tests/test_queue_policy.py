"""Backpressure caps and deadlines: the pure rules, and the queue_policy sensor's tick on a real
instance's run storage (runs written straight into it, as the run queue holds them)."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from dagster import DagsterRunStatus, instance_for_test
from dagster._core.remote_origin import (
    RegisteredCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.test_utils import create_run_for_test

from btpipeline.assets.monitoring.queue_policy import evaluate
from btpipeline.errors import InvalidParameterError
from btpipeline.executors.priority import JobPriority
from btpipeline.scheduling.deadlines import Verdict, judge, parse_deadline
from btpipeline.scheduling.queue_caps import (
    QueueFullError,
    check_room,
    over_cap,
    queue_caps,
)


def _iso(seconds_from_now: float) -> str:
    return dt.datetime.fromtimestamp(time.time() + seconds_from_now, dt.timezone.utc).isoformat()


# --- rules ------------------------------------------------------------------------------------

def test_caps_come_from_the_environment_and_bad_values_name_the_variable():
    caps = queue_caps({"BTPIPELINE_QUEUE_CAP_BULK": "3"})
    assert caps[JobPriority.BULK] == 3 and caps[JobPriority.HIGH] == 25
    with pytest.raises(InvalidParameterError, match="BTPIPELINE_QUEUE_CAP_LOW='many'"):
        queue_caps({"BTPIPELINE_QUEUE_CAP_LOW": "many"})


def test_a_submission_over_the_cap_is_refused_with_the_count_and_the_fix():
    caps = queue_caps({"BTPIPELINE_QUEUE_CAP_HIGH": "2"})
    check_room(JobPriority.HIGH, [JobPriority.HIGH, JobPriority.LOW], caps)
    with pytest.raises(QueueFullError, match="2 HIGH run.*cap 2.*BTPIPELINE_QUEUE_CAP_HIGH"):
        check_room(JobPriority.HIGH, [JobPriority.HIGH, JobPriority.HIGH], caps)


def test_the_newest_runs_over_a_cap_are_the_ones_refused():
    caps = queue_caps({"BTPIPELINE_QUEUE_CAP_LOW": "1"})
    queued = [("b", JobPriority.LOW, 2.0), ("a", JobPriority.LOW, 1.0),
              ("c", JobPriority.LOW, 3.0), ("h", JobPriority.HIGH, 4.0)]
    assert [r[0] for r in over_cap(queued, caps)] == ["b", "c"]


def test_deadline_verdicts():
    now = 1000.0
    assert judge(now, 999.0, 60, started_at=None) is Verdict.MISSED
    assert judge(now, 1030.0, 60, started_at=None) is Verdict.AT_RISK
    assert judge(now, 1100.0, 60, started_at=None) is Verdict.BOOST  # < 3 x 60 s left
    assert judge(now, 2000.0, 60, started_at=None) is Verdict.ON_TRACK
    assert judge(now, 1100.0, 60, started_at=990.0) is Verdict.ON_TRACK  # running, no boost
    assert judge(now, 1040.0, 60, started_at=990.0) is Verdict.AT_RISK
    assert parse_deadline("2026-01-01T00:00:00Z") == parse_deadline("2026-01-01T00:00:00")
    with pytest.raises(InvalidParameterError, match="ISO 8601"):
        parse_deadline("tomorrow")


# --- the sensor's tick --------------------------------------------------------------------------

@pytest.fixture
def instance(monkeypatch):
    monkeypatch.setenv("BTPIPELINE_QUEUE_CAP_BULK", "2")
    with instance_for_test() as inst:
        yield inst


# A queued run names the code location it will be launched from; no server is needed to hold it.
ORIGIN = RemoteJobOrigin(RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("btpipeline"),
                                                "__repository__"), "backtest_job")


def _queued(instance, tags):
    return create_run_for_test(instance, job_name="backtest_job", remote_job_origin=ORIGIN,
                               status=DagsterRunStatus.QUEUED, tags=tags)


def _messages(instance, run_id):
    return [r.dagster_event.message or "" for r in instance.all_logs(run_id) if r.dagster_event]


def test_queued_runs_over_the_cap_are_canceled_newest_first_with_a_reason(instance):
    runs = [_queued(instance, {"btpipeline/priority": "BULK"}) for _ in range(4)]
    high = _queued(instance, {"btpipeline/priority": "HIGH"})
    summary = evaluate(instance, time.time())
    statuses = [instance.get_run_by_id(r.run_id).status for r in runs]
    assert statuses == [DagsterRunStatus.QUEUED] * 2 + [DagsterRunStatus.CANCELED] * 2
    assert instance.get_run_by_id(high.run_id).status is DagsterRunStatus.QUEUED
    assert any("BULK runs are capped at 2 queued (BTPIPELINE_QUEUE_CAP_BULK)" in m
               for m in _messages(instance, runs[3].run_id))
    assert summary.count("over cap 2") == 2
    evaluate(instance, time.time())  # idempotent: nothing more to cancel
    assert [instance.get_run_by_id(r.run_id).status for r in runs] == statuses


def test_a_queued_run_near_its_deadline_is_raised_to_high_and_flagged(instance):
    near = _queued(instance, {"btpipeline/priority": "LOW", "dagster/priority": "-10",
                              "btpipeline/deadline": _iso(60)})  # 60 s left, estimate 300 s
    far = _queued(instance, {"btpipeline/priority": "LOW", "btpipeline/deadline": _iso(86400)})
    evaluate(instance, time.time())
    tags = instance.get_run_by_id(near.run_id).tags
    assert tags["dagster/priority"] == "10" and tags["btpipeline/priority"] == "HIGH"
    assert tags["btpipeline/deadline_status"] == "AT_RISK"
    assert tags["btpipeline/deadline_boosted"] == "true"
    assert any("AT_RISK" in m and "Raised to HIGH" in m for m in _messages(instance, near.run_id))
    far_tags = instance.get_run_by_id(far.run_id).tags
    assert far_tags["btpipeline/deadline_status"] == "ON_TRACK"
    assert far_tags["btpipeline/priority"] == "LOW"
    logged = len(_messages(instance, near.run_id))
    evaluate(instance, time.time())
    assert len(_messages(instance, near.run_id)) == logged  # only changes are logged


def test_a_running_run_past_its_deadline_is_flagged_missed(instance):
    run = create_run_for_test(instance, job_name="backtest_job",
                              status=DagsterRunStatus.STARTED,
                              tags={"btpipeline/deadline": _iso(-5)})
    evaluate(instance, time.time())
    assert instance.get_run_by_id(run.run_id).tags["btpipeline/deadline_status"] == "MISSED"
