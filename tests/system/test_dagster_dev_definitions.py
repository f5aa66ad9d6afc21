"""`dagster dev` serves the same definitions with and without -w (from workspace.yaml, and
from pyproject.toml's [tool.dagster])."""

import subprocess
import sys
import time

import pytest

from btpipeline.definitions import defs
from tests.support import REPO, free_port, graphql, project_env, stop, wait_for_webserver

ASSET_KEYS = "{ assetNodes { assetKey { path } } }"


def _served_asset_keys(tmp_path, extra_args: list[str]) -> set[str]:
    port = free_port()
    env = project_env(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1",
                             "-p", str(port), *extra_args],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_webserver(port, proc)
        for _ in range(60):
            nodes = graphql(port, ASSET_KEYS).get("data", {}) or {}
            if nodes.get("assetNodes"):
                return {"/".join(n["assetKey"]["path"]) for n in nodes["assetNodes"]}
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

