"""Every error btpipeline raises on purpose.

Each class subclasses the builtin it mirrors (a bad parameter is a ``ValueError``, an unknown
name a ``LookupError``) so callers can catch either. Messages say what happened, what was
expected, what was got, and the fix.
"""

from __future__ import annotations


class BtPipelineError(Exception):
    """Base class of every error btpipeline raises deliberately."""


class UnknownStrategyError(BtPipelineError, LookupError):
    """A strategy name that is not in the registry."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(
            f"Unknown strategy {name!r}. Known strategies: {', '.join(sorted(known))}. "
            "Fix: use one of those names (or register the new strategy in "
            "btpipeline/strategies/registry.py)."
        )
        self.name = name


class UnknownEpicError(BtPipelineError, LookupError):
    """An epic (currency pair) that is not in the catalogue."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(
            f"Unknown epic {name!r}. Known epics: {', '.join(sorted(known))}. "
            "Fix: use one of those names, or declare the instrument under `instruments:` in "
            "the universe file (universe.yaml, or the file BTPIPELINE_UNIVERSE names)."
        )
        self.name = name


class SettingsError(BtPipelineError, ValueError):
    """A setting (a model field or its ``BTPIPELINE_*`` environment variable) is invalid."""

    subject = "setting"

    def __init__(self, name: str, expected: str, got: object, fix: str) -> None:
        super().__init__(
            f"Invalid {self.subject} {name!r}: expected {expected}, got {got!r}. Fix: {fix}"
        )
        self.field = name


class ExecutorError(BtPipelineError):
    """Base class of the backtest executor's errors (the rest are in executors/errors.py)."""


class ExecutorConfigError(ExecutorError, SettingsError):
    """A backtest_executor setting (run config or ``BTPIPELINE_*`` variable) is invalid."""

    subject = "backtest_executor setting"


class InvalidParameterError(BtPipelineError, ValueError):
    """A strategy, cost or configuration parameter outside its valid range."""


class InvalidDateRangeError(BtPipelineError, ValueError):
    """An inverted or empty date range."""


class MarketDataError(BtPipelineError, ValueError):
    """Base class of market-data problems (import, validation, storage)."""


class DataValidationError(MarketDataError):
    """Candles that break an OHLC rule; names the file (or source) and the row."""

    def __init__(self, source: str, row: int | None, problem: str, fix: str) -> None:
        where = f"{source}, row {row}" if row is not None else source
        super().__init__(f"Invalid market data in {where}: {problem}. Fix: {fix}")
        self.source = source
        self.row = row


class MissingDataError(MarketDataError, FileNotFoundError):
    """No stored candles where a backtest needs them."""


class CorruptDataFileError(MarketDataError):
    """A stored Arrow file that cannot be read or has the wrong schema."""


class ResultsDatabaseError(BtPipelineError, RuntimeError):
    """The results database could not be reached or written; nothing was changed."""


class UniverseError(BtPipelineError, ValueError):
    """The universe file is missing, not YAML, or breaks its schema; names the file, the key
    path, what was expected, what was found and the fix (every problem, one per line)."""


class StrategyError(BtPipelineError, ValueError):
    """A strategy named in the universe that cannot be imported, is not a ``Strategy``, or
    breaks the target-positions contract (one per bar, integers in {-1, 0, 1}, no look-ahead)."""
class ResultsDatabaseUnavailableError(ResultsDatabaseError):
    """A transient results-database fault (connection lost, server restarting, lock timeout,
    deadlock) that outlasted the retry budget; the same call may succeed later."""


class ResultsDiskFullError(ResultsDatabaseError):
    """The results database's disk is full; nothing was changed."""


class RunNotLiveError(BtPipelineError, RuntimeError):
    """A write by a run that Dagster no longer counts as running (failed, canceled): fenced
    off, so the results database never holds rows of a run Dagster says did not happen."""


class StorageFullError(MarketDataError, OSError):
    """The disk holding the candle store is full; the month file being written was not
    replaced (the previous one, if any, is intact)."""
