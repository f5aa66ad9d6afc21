"""workspace.yaml and pyproject.toml's [tool.dagster] load the same module, so `dagster dev`
serves the same definitions with and without -w (that it does: tests/system/
test_dagster_dev_definitions.py)."""

import tomllib

import yaml

from tests.support import REPO


def test_workspace_and_pyproject_point_at_the_same_module() -> None:
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    module = workspace["load_from"][0]["python_module"]["module_name"]
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["tool"]["dagster"]["module_name"] == module == "btpipeline.definitions"

