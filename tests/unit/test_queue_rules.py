"""Backpressure caps and deadlines, the pure rules. The queue_policy sensor's tick on a
real instance: tests/dagster/test_queue_policy_sensor.py."""

from __future__ import annotations

import pytest

from btpipeline.errors import InvalidParameterError, SettingsError
from btpipeline.machine.deadlines import Verdict, judge, parse_deadline
from btpipeline.machine.priority import JobPriority
from btpipeline.machine.queue_caps import (
    QueueFullError,
    check_room,
    over_cap,
    queue_caps,
)

# --- rules ------------------------------------------------------------------------------------

def test_caps_come_from_the_environment_and_bad_values_name_the_variable():
    caps = queue_caps({"BTPIPELINE_QUEUE_CAP_BULK": "3"})
    assert caps[JobPriority.BULK] == 3 and caps[JobPriority.HIGH] == 25
    with pytest.raises(SettingsError, match="'BTPIPELINE_QUEUE_CAP_LOW'.*>= 0.*'many'.*Fix"):
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
