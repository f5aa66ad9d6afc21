"""``btpipeline report``, run as a user runs it (a subprocess on a SQLite results DB written by
the real writer): the HTML by default, ``--open`` through the web browser ``BROWSER`` names,
``--text`` for the old tables, and clear errors."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from btpipeline.resources.results_database import ResultsDatabase

STRATEGY = "macd_crossover"
T0 = dt.datetime(2024, 2, 1, tzinfo=dt.timezone.utc)


def _write(db: ResultsDatabase) -> None:
    days = ["2024-01-02", "2024-01-03"]
    daily = pd.DataFrame({"day": days, "pnl": [100.0, -40.0], "bars": 1440,
                          "bars_in_market": 600, "partition_key": "2024-01-01"})
    fills = pd.DataFrame({
        "timestamp": pd.to_datetime(["2024-01-02 09:00", "2024-01-03 10:00"], utc=True),
        "side": ["BUY", "SELL"], "action": ["OPEN", "CLOSE"], "price": [1.1, 1.1006],
        "size": 100_000.0, "pnl": [np.nan, 60.0], "partition_key": "2024-01-01"})
    db.write_backtest(strategy=STRATEGY, epic="EURUSD", partition_keys=["2024-01-01"],
                      run_id="cli-test", params={"fast": 12, "slow": 26, "signal": 9},
                      started_at=T0, finished_at=T0, metrics={}, fills=fills, daily=daily)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'results.db'}"
    db = ResultsDatabase(url=url)
    _write(db)
    db.dispose()
    return {**os.environ, "BTPIPELINE_RESULTS_URL": url, "BTPIPELINE_HOME": str(tmp_path / "home"),
            "DAGSTER_HOME": str(tmp_path / "dagster")}


def _report(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "btpipeline.cli", "report", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_writes_the_html_under_the_home_and_opens_it(env: dict[str, str], tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    # webbrowser runs $BROWSER with the URL for %s; this one just records it.
    env["BROWSER"] = (f"{sys.executable} -c \"import pathlib,sys; "
                      f"pathlib.Path(r'{opened}').write_text(sys.argv[1])\" %s")
    done = _report(env, STRATEGY, "--open")
    assert done.returncode == 0, done.stderr
    path = tmp_path / "home" / "reports" / f"{STRATEGY}.html"
    assert done.stdout.strip() == str(path)
    page = path.read_text()
    assert 'id="trades"' in page and "2024-01-03 10:00" in page  # the one trade's exit
    assert opened.read_text() == path.as_uri()


def test_out_and_text(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "elsewhere" / "r.html"
    assert _report(env, STRATEGY, "--out", str(out)).returncode == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    text = _report(env, "--text", "--strategies", STRATEGY)
    assert text.returncode == 0 and "EURUSD" in text.stdout and "total_return" in text.stdout


def test_bad_arguments_say_how_to_fix_them(env: dict[str, str], tmp_path: Path) -> None:
    several = _report(env, "--out", str(tmp_path / "x.html"))
    assert several.returncode == 2 and "Fix: name exactly one strategy" in several.stderr
    unknown = _report(env, "no_such_strategy")
    assert unknown.returncode == 2 and "'no_such_strategy': expected one of" in unknown.stderr
    capital = _report(env, STRATEGY, "--capital", "0")
    assert capital.returncode == 2 and "Invalid report capital" in capital.stderr
