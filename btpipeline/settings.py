"""Where btpipeline keeps its local state when nothing else is configured.

Everything a newcomer's run writes lives under one project-local folder (``.btpipeline`` at the
repository root for an editable install, else under the current directory), overridable with
``BTPIPELINE_HOME``. Dagster's own state lives in ``DAGSTER_HOME`` (``.dagster_home``).

The settings themselves (and their ``BTPIPELINE_*`` variables) are declared once, in
:class:`~btpipeline.machine.settings.PathSettings`; the functions below read them when called,
never at import time, and fill in the defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from btpipeline.machine.settings import PathSettings

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def paths(environ: Mapping[str, str] | None = None) -> PathSettings:
    """The path settings from the environment (``BTPIPELINE_HOME``, ``..._DATA_DIR``, ...)."""
    return PathSettings.from_env(environ=environ)


def project_root() -> Path:
    """The repository root for an editable install, else the current directory."""
    if (_PACKAGE_ROOT / "pyproject.toml").exists():
        return _PACKAGE_ROOT
    return Path.cwd()


def btpipeline_home() -> Path:
    """Folder for market data and the default SQLite results database."""
    return paths().home or project_root() / ".btpipeline"


def default_data_dir() -> Path:
    return paths().data_dir or btpipeline_home() / "data"


def default_results_url() -> str:
    return paths().results_url or f"sqlite:///{btpipeline_home() / 'results.db'}"


def default_live_results_url() -> str:
    """Where the live scanner writes ``live_signals``: ``BTPIPELINE_LIVE_RESULTS_URL``, else
    the results database when it is a server (PostgreSQL: no table blocks another), else its
    own SQLite file ``live.db``. SQLite lets one writer at a time per file, and a backtest
    writing a year of fills holds the lock for about a second: the scanner must not queue
    behind it."""
    current = paths()
    if current.live_results_url:
        return current.live_results_url
    shared = current.results_url
    if shared and not shared.startswith("sqlite"):
        return shared
    return f"sqlite:///{btpipeline_home() / 'live.db'}"


def default_scanner_status() -> Path:
    """The scanner heartbeat: ``BTPIPELINE_SCANNER_STATUS``, else
    ``<BTPIPELINE_HOME>/scanner/status.json``."""
    return paths().scanner_status or btpipeline_home() / "scanner" / "status.json"


def default_dagster_home() -> Path:
    return project_root() / ".dagster_home"


def default_results_retry_seconds() -> float:
    """How long results-database calls are retried through transient faults
    (``BTPIPELINE_RESULTS_RETRY_SECONDS``, default 90)."""
    return paths().results_retry_seconds
