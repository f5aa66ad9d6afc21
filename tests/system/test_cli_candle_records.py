"""``btpipeline generate`` / ``import`` record the months they wrote as materializations of
``candles/<EPIC>`` on the instance in DAGSTER_HOME, and a month with no bars as an
observation with ``bars: 0``."""

import pytest
from dagster import AssetKey, DagsterInstance

from tests.support import REPO, btpipeline, project_env

pytestmark = pytest.mark.slow


def test_generate_and_import_are_candle_materializations(tmp_path) -> None:
    env = project_env(tmp_path)
    out = btpipeline("generate", "--epics", "EURUSD", "--start", "2024-01-01", "--end",
                     "2024-02-29", env=env).stdout
    assert "recorded 2 month(s) of candles in Dagster" in out
    btpipeline("import", str(REPO / "examples" / "data" / "eurusd_sample.csv"), "--epic",
               "EURUSD", "--format", "generic", env=env)
    btpipeline("generate", "--epics", "GBPUSD", "--start", "2024-04-06", "--end", "2024-04-06",
               env=env)  # a Saturday: no bars
    instance = DagsterInstance.from_config(env["DAGSTER_HOME"])
    assert instance.get_materialized_partitions(AssetKey(["candles", "EURUSD"])) == {
        "2022-11-01", "2024-01-01", "2024-02-01"}
    gbp = AssetKey(["candles", "GBPUSD"])
    assert instance.get_materialized_partitions(gbp) == set()
    [observed] = instance.fetch_observations(gbp, limit=5).records
    assert observed.partition_key == "2024-04-01"
    assert observed.asset_observation.metadata["bars"].value == 0
