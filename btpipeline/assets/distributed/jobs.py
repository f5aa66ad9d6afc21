"""``backtest_celery_job``: the same backtest assets as ``backtest_job``, run on Celery nodes.

Runs of this job send each step (one per backtest asset; a partition range stays one step per
asset under ``BackfillPolicy.single_run``) to the Celery queue of the run's priority; the
worker nodes (``celery_app``) run them. Launch it like ``backtest_job``: from the UI's job page
or ``dagster job execute -j backtest_celery_job`` with partition(-range) tags. A reconstructable
entry point with the deployment's resources is ``btpipeline.definitions.backtest_celery_job_def``.
"""

from dagster import define_asset_job

from btpipeline.assets.selections import BACKTESTS, AssetJob
from btpipeline.distributed.executor import backtest_celery_executor

BACKTEST_CELERY_JOB_NAME = "backtest_celery_job"


def backtest_celery_job() -> AssetJob:
    """The backtest assets on ``backtest_celery`` (an unresolved asset job, for Definitions)."""
    return define_asset_job(
        BACKTEST_CELERY_JOB_NAME, selection=BACKTESTS, executor_def=backtest_celery_executor,
        description="Every strategy x epic backtest, each step run by a Celery worker node "
        "(queue by run priority: btpipeline/priority). Start nodes first: "
        "celery -A btpipeline.distributed.celery_app worker -Q backtests.",
    )

