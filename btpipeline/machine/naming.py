"""Names declared once, as plain strings: asset key paths, groups and month partition keys.

The Dagster side (``assets/keys.py``: ``AssetKey``; ``assets/partitions.py``: the
``MonthlyPartitionsDefinition``) is built from these, and Dagster-free code (the client, the
results writer, the CLI) uses them directly, so both spell every name the same way.

A month's partition key is the ISO date of its first day (``2024-03-01``), in UTC. Every month
key in the package comes from :func:`month_key`. The first partition is the universe file's
``history_start`` (``btpipeline.universe``), not a constant here.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from btpipeline.errors import InvalidParameterError

BACKTEST_PREFIX = "backtest"
CANDLES_PREFIX = "candles"
REPORT_PREFIX = "report"

_MONTH_KEY_FORMAT = "%Y-%m-01"
_MONTH_TEXT = re.compile(r"^\d{4}-\d{2}")


def backtest_key_path(strategy: str, epic: str) -> list[str]:
    return [BACKTEST_PREFIX, strategy, epic]


def candles_key_path(epic: str) -> list[str]:
    return [CANDLES_PREFIX, epic]


def report_key_path(strategy: str) -> list[str]:
    return [REPORT_PREFIX, strategy]


def backtest_group(strategy: str) -> str:
    return f"backtest_{strategy}"


def month_key(when: Any) -> Any:
    """The partition key (``YYYY-MM-01``) of the month holding ``when``.

    ``when`` is a ``date`` or ``datetime`` (UTC), text starting ``YYYY-MM`` (``2024-03``,
    ``2024-03-17``), or a pandas Series of either (then a Series of keys, computed vectorised).
    """
    if hasattr(when, "dt"):  # a pandas Series of timestamps
        return _month_keys_of_timestamps(when)
    if hasattr(when, "str") or hasattr(when, "astype"):  # a pandas Series of dates or text
        return when.astype(str).str.slice(0, 7) + "-01"
    if isinstance(when, str):
        if not _MONTH_TEXT.match(when):
            raise InvalidParameterError(
                f"{when!r} is not a month: expected text starting YYYY-MM. Fix: pass e.g. "
                "'2024-03' or '2024-03-17'.")
        return f"{when[:7]}-01"
    return when.strftime(_MONTH_KEY_FORMAT)


def current_month_key(now: dt.datetime | None = None) -> str:
    """The newest month partition: the current, still-growing month (UTC)."""
    return month_key(now or dt.datetime.now(dt.timezone.utc))


def _month_keys_of_timestamps(stamps: Any) -> Any:
    """A Series of timestamps as a Series of month keys (NaT: missing), formatting each distinct
    month once: ``Series.dt.strftime`` formats row by row in Python, and on a backtest's fills
    (~100,000 over four years) that took longer than the backtest itself."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    wall = stamps.dt.tz_localize(None) if stamps.dt.tz is not None else stamps  # as strftime
    codes, months = pd.factorize(wall.to_numpy(dtype="datetime64[M]"))  # NaT: code -1
    keys = pa.array([f"{str(month)[:7]}-01" for month in months], pa.string())
    indices = pa.array(codes.astype(np.int32), mask=codes < 0)
    text = pa.DictionaryArray.from_arrays(indices, keys).cast(pa.string())
    return pd.Series(pd.array(text, dtype="str"), index=stamps.index, name=stamps.name)
