"""``machine_health``: an observable-only asset; the resource monitor records an observation
of the machine's figures at every circuit-breaker transition."""

from dagster import AssetSpec

from btpipeline.assets.keys import HEALTH_KEY

machine_health = AssetSpec(
    HEALTH_KEY, group_name="monitor",
    description="Observations of CPU, memory, pressure stall and scanner latency, recorded by "
    "resource_monitor at every circuit-breaker transition, with the published breaker state.")
