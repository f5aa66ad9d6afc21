"""The market-data sensor groups changed months into contiguous ranges (one run per range),
across a year end. The sensor's ticks: tests/dagster/test_sensor_and_schedule.py."""

from btpipeline.assets.market_data.sensors import contiguous


def test_contiguous_groups_consecutive_months_across_a_year_end() -> None:
    months = ["2023-11", "2023-12", "2024-01", "2024-03"]
    assert list(contiguous(months)) == [("2023-11", "2024-01"), ("2024-03", "2024-03")]

