"""The definitions load, and `dagster dev` serves the same ones with and without -w."""

import subprocess
import tomllib

import pytest
import yaml

from btpipeline.definitions import defs
from tests.support import REPO, free_port, graphql, project_env, stop, wait_for_webserver

ASSET_KEYS = "{ assetNodes { assetKey { path } } }"


def test_definitions_hold_a_backtest_per_strategy_and_epic() -> None:
    keys = {"/".join(k.path) for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert "backtest/macd_crossover/EURUSD" in keys
    assert len([k for k in keys if k.startswith("backtest/")]) == 4 * 6
    assert {"report/macd_crossover", "candles/EURUSD"} <= keys
    for job in ("backtest_job", "market_data_job", "reports_job"):
        defs.resolve_job_def(job)


def test_workspace_and_pyproject_point_at_the_same_module() -> None:
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    module = workspace["load_from"][0]["python_module"]["module_name"]
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["tool"]["dagster"]["module_name"] == module == "btpipeline.definitions"


def _served_asset_keys(tmp_path, extra_args: list[str]) -> set[str]:
    port = free_port()
    env = project_env(tmp_path)
    proc = subprocess.Popen(["dagster", "dev", "-h", "127.0.0.1", "-p", str(port), *extra_args],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_webserver(port, proc)
        for _ in range(60):
            nodes = graphql(port, ASSET_KEYS).get("data", {}) or {}
            if nodes.get("assetNodes"):
                return {"/".join(n["assetKey"]["path"]) for n in nodes["assetNodes"]}
            import time
            time.sleep(1)
        raise AssertionError("the webserver never listed any asset")
    finally:
        stop(proc)


@pytest.mark.slow
def test_dagster_dev_loads_the_same_definitions_with_and_without_workspace(tmp_path) -> None:
    with_workspace = _served_asset_keys(tmp_path / "a", ["-w", "workspace.yaml"])
    from_pyproject = _served_asset_keys(tmp_path / "b", [])
    expected = {"/".join(k.path) for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert with_workspace == from_pyproject == expected
