"""Settings from the environment: typed ``BTPIPELINE_<FIELD>`` overrides, read only when asked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from btpipeline import settings
from btpipeline.errors import ExecutorConfigError, SettingsError
from btpipeline.machine.executor_settings import ExecutorSettings
from btpipeline.machine.settings import PathSettings, env_overrides, env_var

#: Modules whose import is a process start: ``celery -A btpipeline.distributed.celery_app``
#: builds the node's app (and reads its settings) at import, as Celery requires.
ENTRY_POINTS = ("btpipeline.distributed.celery_app",)
_IMPORT_EVERYTHING = f"""
import importlib, pkgutil, btpipeline
names = [m.name for m in pkgutil.walk_packages(btpipeline.__path__, "btpipeline.")
         if m.name not in {ENTRY_POINTS!r}]
for name in names:
    importlib.import_module(name)
print(len(names))
"""


def test_importing_any_module_with_bogus_values_set_does_not_raise(tmp_path: Path) -> None:
    bogus = {env_var(name): "bogus" for name in ExecutorSettings.model_fields}
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[2]),
           "DAGSTER_HOME": str(tmp_path), "BTPIPELINE_HOME": str(tmp_path / "home"), **bogus}
    done = subprocess.run([sys.executable, "-c", _IMPORT_EVERYTHING], env=env, text=True,
                          capture_output=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.split()[-1]) > 50  # it really walked the package
    with pytest.raises(ExecutorConfigError,
                       match="BTPIPELINE_MAX_CONCURRENT_BACKTESTS.*'bogus'.*Fix"):
        ExecutorSettings.from_env({}, environ=bogus)


@pytest.mark.parametrize(("name", "raw", "expected"), [
    ("max_concurrent_backtests", "3", 3),
    ("max_concurrent_backtests", "none", None),
    ("live_scanner_cpu_reserve", "0.5", 0.5),
    ("scanner_cores", "0, 2", (0, 2)),
    ("record_step_timings", "no", False),
    ("execution_mode", "standalone", ExecutorSettings().execution_mode.STANDALONE),
    ("default_step_timeout_seconds", "", None),
    ("shed_max_priority", "LOW", "LOW"),
])
def test_env_values_are_parsed_by_the_field_type(name: str, raw: str, expected: object) -> None:
    assert env_overrides(ExecutorSettings, {env_var(name): raw}) == {name: expected}
    assert getattr(ExecutorSettings.from_env({}, environ={env_var(name): raw}), name) == expected


@pytest.mark.parametrize(("name", "raw", "expected"), [
    ("max_steps_per_batch", "0", ">= 1"),
    ("worker_affinity_enabled", "maybe", "a bool"),
    ("scanner_cores", "1,x", "comma-separated int values"),
    ("shed_max_priority", "URGENT", "CRITICAL|HIGH"),
    ("retries", "sometimes", "one of enabled, disabled"),
])
def test_bad_env_values_name_the_variable_the_expectation_and_the_fix(
        name: str, raw: str, expected: str) -> None:
    var = env_var(name)
    with pytest.raises(ExecutorConfigError) as caught:
        ExecutorSettings.from_env({}, environ={var: raw})
    message = str(caught.value)
    assert var in message and expected in message and repr(raw) in message
    assert f"Fix: set {var} to" in message


def test_the_environment_wins_over_the_run_config() -> None:
    cfg = ExecutorSettings.from_env({"max_steps_per_batch": 4, "event_batch_size": 8},
                                    environ={env_var("max_steps_per_batch"): "2"})
    assert (cfg.max_steps_per_batch, cfg.event_batch_size) == (2, 8)


def test_path_settings_fill_in_defaults_under_home(monkeypatch, tmp_path: Path) -> None:
    for name in PathSettings.model_fields:
        monkeypatch.delenv(env_var(name), raising=False)
    monkeypatch.setenv("BTPIPELINE_HOME", str(tmp_path))
    monkeypatch.setenv("BTPIPELINE_DATA_DIR", "")  # empty: the default, as before
    assert settings.default_data_dir() == tmp_path / "data"
    assert settings.default_results_url() == f"sqlite:///{tmp_path / 'results.db'}"
    assert settings.default_scanner_status() == tmp_path / "scanner" / "status.json"
    monkeypatch.setenv("BTPIPELINE_RESULTS_URL", "postgresql://u@h/db")
    assert settings.default_live_results_url() == "postgresql://u@h/db"
    monkeypatch.setenv("BTPIPELINE_SCANNER_STATUS", str(tmp_path / "s.json"))
    assert settings.default_scanner_status() == tmp_path / "s.json"


def test_unknown_fields_are_refused_by_name() -> None:
    with pytest.raises(SettingsError, match="'home_dir'.*PathSettings"):
        PathSettings(home_dir="/tmp")


def test_the_default_client_reads_its_address_when_called(monkeypatch) -> None:
    from btpipeline.client import default_client

    monkeypatch.setenv("BTPIPELINE_DAGSTER_HOST", "10.0.0.7")
    monkeypatch.setenv("BTPIPELINE_DAGSTER_PORT", "3100")
    client = default_client()
    assert (client.host, client.port) == ("10.0.0.7", 3100)
    monkeypatch.setenv("BTPIPELINE_DAGSTER_PORT", "70000")
    with pytest.raises(SettingsError, match="BTPIPELINE_DAGSTER_PORT.*<= 65535.*'70000'"):
        default_client()
