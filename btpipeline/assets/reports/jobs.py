"""``reports_job``: rebuild every ``report/<strategy>`` asset from the results database."""

from dagster import define_asset_job

from btpipeline.assets.selections import REPORTS, AssetJob

REPORTS_JOB_NAME = "reports_job"


def reports_job() -> AssetJob:
    return define_asset_job(REPORTS_JOB_NAME, selection=REPORTS,
                            description="Rebuild every strategy's report from the results DB.")
