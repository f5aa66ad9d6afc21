"""The market-data sensor groups changed months into contiguous ranges (one run per range),
across a year end. The sensor's ticks: tests/dagster/test_sensor_and_schedule.py."""

from btpipeline.assets.market_data.sensors import contiguous


def test_contiguous_groups_consecutive_months_across_a_year_end() -> None:
    months = ["2023-11", "2023-12", "2024-01", "2024-03"]
    assert list(contiguous(months)) == [("2023-11", "2024-01"), ("2024-03", "2024-03")]



def test_month_keys_of_a_timestamp_series_match_strftime_row_by_row() -> None:
    """``month_key`` formats each distinct month once; the keys are strftime's, NaT missing."""
    import pandas as pd

    from btpipeline.machine.naming import month_key

    stamps = pd.Series(pd.to_datetime(["2023-12-31 23:59:59.999", None, "2024-01-01",
                                       "2024-02-29 12:00", "2023-12-01"], utc=True,
                                      format="ISO8601"), index=[5, 4, 3, 2, 1], name="timestamp")
    pd.testing.assert_series_equal(month_key(stamps), stamps.dt.strftime("%Y-%m-01"))
    assert month_key(stamps).tolist()[:1] == ["2023-12-01"]
