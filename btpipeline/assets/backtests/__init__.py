"""The backtests domain: ``backtest/<strategy>/<EPIC>`` assets, ``backtest_job`` and the
nightly schedule."""
