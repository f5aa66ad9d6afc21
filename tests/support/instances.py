"""Dagster instances for in-process tests with the storage btpipeline ships (dagster.yaml)."""

from __future__ import annotations

from typing import Any

import yaml

from tests.support import REPO


def shipped_storage(base_dir: str) -> dict[str, Any]:
    """``instance_for_test`` overrides: dagster.yaml's ``storage`` block, under ``base_dir``
    (given as a path, not ``{env: DAGSTER_HOME}``: a forkserver started by an earlier test
    keeps that earlier test's environment)."""
    storage = yaml.safe_load((REPO / "dagster.yaml").read_text())["storage"]
    custom = storage["custom"]
    return {"storage": {"custom": {**custom, "config": {**custom.get("config", {}),
                                                          "base_dir": base_dir}}}}
