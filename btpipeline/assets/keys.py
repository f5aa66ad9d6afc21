"""Asset keys, built from the names in :mod:`btpipeline.machine.naming` (declared once)."""

from dagster import AssetKey

from btpipeline.machine.naming import backtest_key_path, candles_key_path, report_key_path


def backtest_key(strategy: str, epic: str) -> AssetKey:
    return AssetKey(backtest_key_path(strategy, epic))


def candles_key(epic: str) -> AssetKey:
    return AssetKey(candles_key_path(epic))


def report_key(strategy: str) -> AssetKey:
    return AssetKey(report_key_path(strategy))


# Observed (never materialized) by the resource monitor sensor at each breaker transition.
HEALTH_KEY = AssetKey(["machine_health"])
