"""The backtests domain: ``backtest/<variant>/<INSTRUMENT>`` assets (one per variant x
instrument of the universe file), ``backtest_job`` and the nightly schedule."""
