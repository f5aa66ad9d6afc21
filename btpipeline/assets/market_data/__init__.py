"""The market-data domain: ``candles/<EPIC>`` assets, ``market_data_job`` and the sensor that
runs it on new or changed month files."""
