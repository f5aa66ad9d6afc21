"""Where btpipeline keeps its local state when nothing else is configured.

Everything a newcomer's run writes lives under one project-local folder (``.btpipeline`` at the
repository root for an editable install, else under the current directory), overridable with
``BTPIPELINE_HOME``. Dagster's own state lives in ``DAGSTER_HOME`` (``.dagster_home``).
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def project_root() -> Path:
    """The repository root for an editable install, else the current directory."""
    if (_PACKAGE_ROOT / "pyproject.toml").exists():
        return _PACKAGE_ROOT
    return Path.cwd()


def btpipeline_home() -> Path:
    """Folder for market data and the default SQLite results database."""
    return Path(os.environ.get("BTPIPELINE_HOME") or project_root() / ".btpipeline")


def default_data_dir() -> Path:
    return Path(os.environ.get("BTPIPELINE_DATA_DIR") or btpipeline_home() / "data")


def default_results_url() -> str:
    return (os.environ.get("BTPIPELINE_RESULTS_URL")
            or f"sqlite:///{btpipeline_home() / 'results.db'}")


def default_live_results_url() -> str:
    """Where the live scanner writes ``live_signals``: ``BTPIPELINE_LIVE_RESULTS_URL``, else
    the results database when it is a server (PostgreSQL: no table blocks another), else its
    own SQLite file ``live.db``. SQLite lets one writer at a time per file, and a backtest
    writing a year of fills holds the lock for about a second: the scanner must not queue
    behind it."""
    explicit = os.environ.get("BTPIPELINE_LIVE_RESULTS_URL")
    if explicit:
        return explicit
    shared = os.environ.get("BTPIPELINE_RESULTS_URL")
    if shared and not shared.startswith("sqlite"):
        return shared
    return f"sqlite:///{btpipeline_home() / 'live.db'}"


def default_dagster_home() -> Path:
    return project_root() / ".dagster_home"


DEFAULT_RESULTS_RETRY_SECONDS = 90.0
"""Long enough for a PostgreSQL restart of a minute, with margin."""


def default_results_retry_seconds() -> float:
    """How long results-database calls are retried through transient faults
    (``BTPIPELINE_RESULTS_RETRY_SECONDS``, default 90)."""
    value = os.environ.get("BTPIPELINE_RESULTS_RETRY_SECONDS")
    return float(value) if value else DEFAULT_RESULTS_RETRY_SECONDS
