"""Checks on user input shared by the CLI, the demo and the client."""

from __future__ import annotations

import datetime as dt

from btpipeline.errors import InvalidDateRangeError


def check_date_range(start: dt.date, end: dt.date) -> None:
    """Reject an inverted range; ``end`` is inclusive, so start == end is one day."""
    if end < start:
        raise InvalidDateRangeError(
            f"Date range is inverted: start {start.isoformat()} is after end {end.isoformat()}. "
            "Fix: swap them (end is inclusive)."
        )
