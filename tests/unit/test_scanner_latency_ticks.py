"""The scanner latency benchmark's tick window: every row reports the same scanner ticks."""

import numpy as np
import pytest

from benchmarks.scanner_latency import counted_ticks


def test_counted_ticks_skip_startup_and_keep_exactly_the_count() -> None:
    ticks = np.arange(30.0)
    keep = counted_ticks(ticks, startup=8, count=20)
    assert ticks[keep].tolist() == list(range(8, 28))


def test_counted_ticks_refuse_a_row_that_ended_early() -> None:
    with pytest.raises(RuntimeError, match="logged 12 of the 20 ticks.*Fix: fewer --ticks"):
        counted_ticks(np.arange(20.0), startup=8, count=20)
