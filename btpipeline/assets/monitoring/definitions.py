"""The monitoring domain's contribution to btpipeline's Definitions (its ``monitor_settings``
resource is one of the shared resources in btpipeline.definitions)."""

from dagster import Definitions

from btpipeline.assets.monitoring.assets import machine_health
from btpipeline.assets.monitoring.sensors import (
    make_queue_policy_sensor,
    make_resource_monitor_sensor,
)


def defs() -> Definitions:
    """``machine_health`` and the ``resource_monitor`` and ``queue_policy`` sensors."""
    return Definitions(assets=[machine_health],
                       sensors=[make_resource_monitor_sensor(), make_queue_policy_sensor()])
