"""The distributed domain's contribution to btpipeline's Definitions."""

from dagster import Definitions

from btpipeline.assets.distributed.jobs import backtest_celery_job


def defs() -> Definitions:
    """``backtest_celery_job``; its assets are the backtests domain's."""
    return Definitions(jobs=[backtest_celery_job()])
