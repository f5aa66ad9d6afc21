"""The neutral machine layer: machine policies; no Dagster, executor or asset import."""
