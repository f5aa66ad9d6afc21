"""The monitoring domain: the ``machine_health`` asset, the resource monitor (circuit breaker)
and the queue-policy sensors. The breaker's plain-Python logic lives in btpipeline.monitor."""
