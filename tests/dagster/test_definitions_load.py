"""The definitions load: a backtest asset per strategy and epic, the reports, the jobs.
`dagster dev` serving them: tests/system/test_dagster_dev_definitions.py."""

from btpipeline.definitions import defs


def test_definitions_hold_a_backtest_per_strategy_and_epic() -> None:
    keys = {"/".join(k.path) for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert "backtest/macd_crossover/EURUSD" in keys
    assert len([k for k in keys if k.startswith("backtest/")]) == 4 * 6
    assert {"report/macd_crossover", "candles/EURUSD"} <= keys
    for job in ("backtest_job", "market_data_job", "reports_job"):
        defs.resolve_job_def(job)
