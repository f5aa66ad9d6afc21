"""The nightly re-backtest of the month that holds yesterday (its data grew during the day)."""

import datetime as dt

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    schedule,
)

from btpipeline.assets.selections import AssetJob
from btpipeline.machine.naming import month_key


def make_nightly_schedule(job: AssetJob) -> ScheduleDefinition:
    @schedule(name="nightly_backtest", job=job, cron_schedule="15 1 * * *",
              execution_timezone="UTC", default_status=DefaultScheduleStatus.STOPPED,
              description="01:15 UTC: backtest every strategy x epic on yesterday's month.")
    def nightly_backtest(context: ScheduleEvaluationContext) -> RunRequest:
        yesterday = (context.scheduled_execution_time - dt.timedelta(days=1)).date()
        key = month_key(yesterday)
        return RunRequest(run_key=f"nightly:{yesterday.isoformat()}", partition_key=key)

    return nightly_backtest
