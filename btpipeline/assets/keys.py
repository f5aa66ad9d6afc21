"""Asset keys and groups, in one place so assets, jobs, sensors and the CLI agree."""

from dagster import AssetKey

BACKTEST_PREFIX = "backtest"
CANDLES_PREFIX = "candles"
REPORT_PREFIX = "report"


def backtest_key(strategy: str, epic: str) -> AssetKey:
    return AssetKey([BACKTEST_PREFIX, strategy, epic])


def candles_key(epic: str) -> AssetKey:
    return AssetKey([CANDLES_PREFIX, epic])


def report_key(strategy: str) -> AssetKey:
    return AssetKey([REPORT_PREFIX, strategy])


def backtest_group(strategy: str) -> str:
    return f"backtest_{strategy}"


# Observed (never materialized) by the resource monitor sensor at each breaker transition.
HEALTH_KEY = AssetKey(["machine_health"])
