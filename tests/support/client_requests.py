"""Client requests shared by the client's unit tests and its tests against ``dagster dev``:
the months used, and requests that must be refused before anything reaches the server."""

from __future__ import annotations

import datetime as dt

import pytest

from btpipeline.errors import (
    InvalidDateRangeError,
    InvalidParameterError,
    UnknownEpicError,
    UnknownStrategyError,
)

JAN, MAR = dt.date(2024, 1, 1), dt.date(2024, 3, 31)
BAD_REQUESTS = [
    pytest.param(("MACD_Strategy", ["EURUSD"], JAN, MAR), UnknownStrategyError, id="strategy"),
    pytest.param(("macd_crossover", ["EURUSD", "XAUUSD"], JAN, MAR), UnknownEpicError,
                 id="epic"),
    pytest.param(("macd_crossover", ["EURUSD"], MAR, JAN), InvalidDateRangeError,
                 id="inverted"),
    pytest.param(("macd_crossover", ["EURUSD"], dt.date(2019, 6, 1), MAR),
                 InvalidDateRangeError, id="before-partitions"),
    pytest.param(("macd_crossover", ["EURUSD"], JAN, dt.date.today() + dt.timedelta(days=62)),
                 InvalidDateRangeError, id="future"),
    pytest.param(("macd_crossover", [], JAN, MAR), InvalidParameterError, id="no-epics"),
]
