"""The neutral machine layer: policies about this machine, with no Dagster, executor or asset import."""
