"""Retry a results-database call through transient faults, for a bounded time with backoff."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from btpipeline.errors import ResultsDatabaseUnavailableError

T = TypeVar("T")
FIRST_DELAY_S = 0.25
MAX_DELAY_S = 5.0
_log = logging.getLogger("btpipeline.results")


def retrying(call: Callable[[], T], *, budget_s: float, action: str) -> T:
    """``call()``, again after each ``ResultsDatabaseUnavailableError`` until ``budget_s``
    seconds have passed (0.25 s, doubling up to 5 s between tries); then raise saying how long
    it was retried. Every other error propagates at once."""
    deadline = time.monotonic() + budget_s
    delay, tries = FIRST_DELAY_S, 0
    while True:
        tries += 1
        try:
            return call()
        except ResultsDatabaseUnavailableError as error:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ResultsDatabaseUnavailableError(
                    f"{error} It stayed unavailable: tried {tries} times, retried for "
                    f"{budget_s:g} s. Fix: bring the server back (or raise "
                    "BTPIPELINE_RESULTS_RETRY_SECONDS for longer outages) and run again."
                ) from error
            _log.warning("results database unavailable while trying to %s; retrying in %.2f s "
                         "(%.0f s of the retry budget left): %s", action, min(delay, left),
                         left, error)
            time.sleep(min(delay, left))
            delay = min(delay * 2, MAX_DELAY_S)
