"""btpipeline's one code location: every domain's definitions (btpipeline/assets/<domain>/)
merged, with the shared resources and the default executor.

pyproject.toml's ``[tool.dagster]`` and workspace.yaml both load ``defs`` from this module.
The ``*_job_def`` functions are reconstructable entry points for ``execute_job`` (CLI demo,
tests, benchmarks, Celery worker nodes): they resolve a job from these very ``defs``, so a run
started through them runs what the code location serves. The domains never import this module.
"""

import os
from collections.abc import Mapping

from dagster import Definitions, EnvVar, JobDefinition

from btpipeline.assets.backtests import definitions as backtests
from btpipeline.assets.backtests.jobs import BACKTEST_JOB_NAME
from btpipeline.assets.distributed import definitions as distributed
from btpipeline.assets.distributed.jobs import BACKTEST_CELERY_JOB_NAME
from btpipeline.assets.market_data import definitions as market_data
from btpipeline.assets.market_data.jobs import MARKET_DATA_JOB_NAME
from btpipeline.assets.monitoring import definitions as monitoring
from btpipeline.assets.partitions import monthly_partitions
from btpipeline.assets.reports import definitions as reports
from btpipeline.assets.reports.jobs import REPORTS_JOB_NAME
from btpipeline.assets.sweeps import definitions as sweeps
from btpipeline.assets.sweeps.jobs import SWEEP_JOB_NAME
from btpipeline.executors import backtest_executor
from btpipeline.monitor.settings import ResourceMonitorSettings
from btpipeline.resources.market_data_store import MarketDataStore
from btpipeline.resources.results_database import ResultsDatabase
from btpipeline.universe import Universe, default_universe


def default_resources() -> dict[str, object]:
    """The resources a deployment uses; URLs and paths come from the environment at run time
    (``BTPIPELINE_RESULTS_URL``, ``BTPIPELINE_DATA_DIR``), so no secret lands in a file or the
    UI."""
    results_db = (ResultsDatabase(url=EnvVar("BTPIPELINE_RESULTS_URL"))
                  if os.environ.get("BTPIPELINE_RESULTS_URL") else ResultsDatabase())
    market_data_store = (MarketDataStore(root=EnvVar("BTPIPELINE_DATA_DIR"))
                         if os.environ.get("BTPIPELINE_DATA_DIR") else MarketDataStore())
    return {"market_data": market_data_store, "results_db": results_db,
            "monitor_settings": ResourceMonitorSettings()}


def build_definitions(resources: Mapping[str, object] | None = None,
                      universe: Universe | None = None) -> Definitions:
    """All of btpipeline for ``universe`` (default: the universe file, read now: reloading the
    code location re-reads it); ``resources`` replaces the defaults (tests point them at tmp
    folders). Every variant's strategy was checked (contract, no look-ahead) when the file was
    validated, so a broken one fails here, naming the variant, before anything runs."""
    universe = universe if universe is not None else default_universe()
    partitions = monthly_partitions(universe.history_start)
    shared = Definitions(resources={**default_resources(), **(resources or {})},
                         executor=backtest_executor)
    return Definitions.merge(market_data.defs(universe, partitions),
                             backtests.defs(universe, partitions), reports.defs(universe),
                             sweeps.defs(), monitoring.defs(), distributed.defs(), shared)


defs = build_definitions()


def market_data_job_def() -> JobDefinition:
    return defs.resolve_job_def(MARKET_DATA_JOB_NAME)


def reports_job_def() -> JobDefinition:
    return defs.resolve_job_def(REPORTS_JOB_NAME)


def backtest_job_def() -> JobDefinition:
    return defs.resolve_job_def(BACKTEST_JOB_NAME)


def sweep_job_def() -> JobDefinition:
    """Override ``resources.market_data.config.root`` in the run config to read another store."""
    return defs.resolve_job_def(SWEEP_JOB_NAME)


def backtest_celery_job_def() -> JobDefinition:
    return defs.resolve_job_def(BACKTEST_CELERY_JOB_NAME)
