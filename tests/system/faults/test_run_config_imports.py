"""Run config imports no code: ``forkserver_preload`` is the deployment's, not a launch's."""

from __future__ import annotations

import pytest
from dagster import DagsterInvalidConfigError, validate_run_config

from btpipeline.definitions import defs
from btpipeline.machine.executor_settings import DEFAULT_PRELOAD, PRELOAD_ENV, forkserver_preload


def test_a_run_config_naming_modules_to_preload_is_refused() -> None:
    config = {"execution": {"config": {"forkserver_preload": ["antigravity"]}}}
    job = defs.resolve_job_def("backtest_job")
    validate_run_config(job, {"execution": {"config": {"event_batch_size": 8}}})
    with pytest.raises(DagsterInvalidConfigError, match="forkserver_preload"):
        validate_run_config(job, config)


def test_the_preload_list_comes_from_the_deployment_environment() -> None:
    assert forkserver_preload({}) == DEFAULT_PRELOAD
    assert forkserver_preload({PRELOAD_ENV: "numpy, pandas"}) == ("numpy", "pandas")
