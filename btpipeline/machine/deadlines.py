"""``btpipeline/deadline``: when a run must be done by (ISO 8601, UTC), and what follows.

For each queued or running run with a deadline, the ``queue_policy`` sensor asks
:func:`judge` with an estimate of the run's duration (the median of recent successful runs of
the same job; a default when there is none):

* ``BOOST``: queued, and the time left is under ``boost_factor`` x the estimate: its priority
  is raised to HIGH, so the run queue starts it ahead of NORMAL / LOW / BULK work (and, being
  HIGH, it preempts LOW / BULK runs and is never paused by the fast path);
* ``AT_RISK``: it cannot finish in time at the estimated duration;
* ``MISSED``: the deadline passed and the run has not finished;
* ``ON_TRACK`` otherwise.

The verdict is written as the run tag ``btpipeline/deadline_status`` (a column in the UI's run
list, and filterable) and, when it changes, as a message in the run's event log.
"""

from __future__ import annotations

import datetime as dt
import enum

from btpipeline.errors import InvalidParameterError
from btpipeline.machine.tags import DEADLINE_TAG

DEFAULT_ESTIMATE_SECONDS = 300.0
BOOST_FACTOR = 3.0


class Verdict(enum.Enum):
    ON_TRACK = "ON_TRACK"
    BOOST = "BOOST"
    AT_RISK = "AT_RISK"
    MISSED = "MISSED"


def parse_deadline(raw: str) -> float:
    """Epoch seconds of a ``btpipeline/deadline`` tag value (naive times are UTC)."""
    try:
        value = dt.datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidParameterError(
            f"{DEADLINE_TAG}={raw!r} is not an ISO 8601 time. Fix: e.g. "
            "2026-12-01T18:00:00+00:00.") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.timestamp()


def judge(now: float, deadline: float, estimate_s: float, *, started_at: float | None,
          boost_factor: float = BOOST_FACTOR) -> Verdict:
    """The verdict for one run; ``started_at`` None means it is still queued."""
    if now >= deadline:
        return Verdict.MISSED
    expected_end = (started_at if started_at is not None else now) + estimate_s
    if expected_end > deadline:
        return Verdict.AT_RISK
    if started_at is None and deadline - now < boost_factor * estimate_s:
        return Verdict.BOOST
    return Verdict.ON_TRACK
