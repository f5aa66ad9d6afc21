"""The queue_policy sensor's tick on a real instance's run storage (runs written straight
into it, as the run queue holds them): caps cancel the newest queued runs, deadlines raise or
flag runs. The pure rules: tests/unit/test_queue_rules.py."""

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


def _iso(seconds_from_now: float) -> str:
    return dt.datetime.fromtimestamp(time.time() + seconds_from_now, dt.timezone.utc).isoformat()


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
