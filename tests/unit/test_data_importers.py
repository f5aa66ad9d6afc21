"""CSV import: HistData and headed CSVs parse to the right UTC bars; every bad line is named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from btpipeline.data.importers import read_csv_candles, read_generic_csv, read_histdata_csv
from btpipeline.errors import DataValidationError

HISTDATA = """\
20240102 170000;1.104350;1.104400;1.104300;1.104380;0
20240102 170100;1.104380;1.104500;1.104370;1.104450;0
20240702 120000;1.074000;1.074100;1.073900;1.074050;3
"""


def _ns(text: str) -> int:
    return pd.Timestamp(text).value


def _write(tmp_path: Path, text: str, name: str = "bars.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_histdata_lines_become_utc_bars_five_hours_later_all_year(tmp_path) -> None:
    candles = read_histdata_csv(_write(tmp_path, HISTDATA))
    # HistData is EST without daylight saving: +5 h in winter AND in July.
    assert candles.timestamp.tolist() == [_ns("2024-01-02T22:00Z"), _ns("2024-01-02T22:01Z"),
                                          _ns("2024-07-02T17:00Z")]
    assert candles.open.tolist() == [1.10435, 1.10438, 1.074]
    assert candles.high.tolist() == [1.1044, 1.1045, 1.0741]
    assert candles.low.tolist() == [1.1043, 1.10437, 1.0739]
    assert candles.close.tolist() == [1.10438, 1.10445, 1.07405]
    assert candles.volume.tolist() == [0.0, 0.0, 3.0]
    assert candles.timestamp.dtype == np.int64


def test_auto_sniffs_histdata_and_generic(tmp_path) -> None:
    hist = read_csv_candles(_write(tmp_path, HISTDATA, "h.csv"))
    generic = read_csv_candles(_write(tmp_path, "timestamp,open,high,low,close\n"
                                                "2024-01-02T22:00:00Z,1,1.2,0.9,1.1\n", "g.csv"))
    assert len(hist) == 3 and len(generic) == 1


def test_generic_csv_iso_timestamps_case_insensitive_columns(tmp_path) -> None:
    text = ("Time,OPEN,High,low,Close,Volume,spread\n"
            "2024-01-02T22:00:00Z,1.1,1.2,1.0,1.15,7,0.1\n"
            "2024-01-02 22:01:00,1.15,1.2,1.1,1.12,8,0.1\n"         # naive = UTC
            "2024-01-02T23:02:00+01:00,1.12,1.13,1.11,1.125,9,0.1\n")  # offset converted
    candles = read_generic_csv(_write(tmp_path, text), timestamp_column="time")
    assert candles.timestamp.tolist() == [_ns("2024-01-02T22:00Z"), _ns("2024-01-02T22:01Z"),
                                          _ns("2024-01-02T22:02Z")]
    assert candles.close.tolist() == [1.15, 1.12, 1.125]
    assert candles.volume.tolist() == [7.0, 8.0, 9.0]


@pytest.mark.parametrize("scale", [1, 1000])
def test_generic_csv_epoch_seconds_and_milliseconds(tmp_path, scale) -> None:
    text = "timestamp,open,high,low,close\n" + "".join(
        f"{(1704232800 + 60 * i) * scale},1.1,1.2,1.0,1.1\n" for i in range(3))
    candles = read_generic_csv(_write(tmp_path, text))
    assert candles.timestamp.tolist() == [_ns("2024-01-02T22:00Z") + 60 * 10**9 * i
                                          for i in range(3)]
    assert candles.volume.tolist() == [0.0, 0.0, 0.0]  # no volume column


def test_blank_lines_are_skipped_but_counted(tmp_path) -> None:
    lines = HISTDATA.splitlines()
    text = "\n".join([lines[0], "", lines[1], "20240702 120000;1.07;1.06;1.05;1.07;0"]) + "\n"
    with pytest.raises(DataValidationError) as info:
        read_histdata_csv(_write(tmp_path, text))
    assert info.value.row == 4


def test_wrong_columns_list_expected_and_found(tmp_path) -> None:
    path = _write(tmp_path, "date,o,h,l,c\n2024-01-02,1,1,1,1\n")
    with pytest.raises(DataValidationError) as info:
        read_generic_csv(path)
    message = str(info.value)
    assert str(path) in message and "row 1" in message
    assert "'timestamp', 'open', 'high', 'low', 'close'" in message  # expected
    assert "'date', 'o', 'h', 'l', 'c'" in message  # found
    assert "Fix:" in message


GOOD = [
    "20240102 170000;1.10000;1.10020;1.09990;1.10010;0",
    "20240102 170100;1.10010;1.10030;1.10000;1.10020;0",
    "20240102 170200;1.10020;1.10040;1.10010;1.10030;0",
]

BAD_THIRD_LINE = {
    "duplicate timestamp": "20240102 170100;1.10020;1.10040;1.10010;1.10030;0",
    "earlier than the previous": "20240102 165900;1.10020;1.10040;1.10010;1.10030;0",
    "high 1.1002 is below max(open, close) 1.1003":
        "20240102 170200;1.10020;1.10020;1.10010;1.10030;0",
    "low 1.1002 is above min(open, close) 1.1001":
        "20240102 170200;1.10010;1.10040;1.10020;1.10030;0",
    "open price is 0.0": "20240102 170200;0;1.10040;1.10010;1.10030;0",
    "low price is -1.1": "20240102 170200;1.10020;1.10040;-1.1;1.10030;0",
    "close price is nan": "20240102 170200;1.10020;1.10040;1.10010;;0",
    "high price is nan": "20240102 170200;1.10020;NaN;1.10010;1.10030;0",
    "is not a number": "20240102 170200;1.10020;1.1x;1.10010;1.10030;0",
    "is not in HistData's": "2024-01-02 170200;1.10020;1.10040;1.10010;1.10030;0",
    "'20240230 170200' is not": "20240230 170200;1.10020;1.10040;1.10010;1.10030;0",
}


@pytest.mark.parametrize("problem", list(BAD_THIRD_LINE))
def test_a_bad_histdata_line_is_named_by_file_and_line(tmp_path, problem) -> None:
    path = _write(tmp_path, "\n".join([GOOD[0], GOOD[1], BAD_THIRD_LINE[problem], GOOD[2]]))
    with pytest.raises(DataValidationError) as info:
        read_histdata_csv(path)
    message = str(info.value)
    assert info.value.row == 3
    assert f"{path}, row 3" in message
    assert problem in message
    assert "Fix:" in message


@pytest.mark.parametrize("bad", ["2024-01-02T22:00:00Z,1.1,1.2,1.0,1.1",   # duplicate
                                 "2024-01-02T21:59:00Z,1.1,1.2,1.0,1.1",   # backwards
                                 "2024-01-02T22:02:00Z,1.1,1.05,1.0,1.1",  # high < max
                                 "2024-01-02T22:02:00Z,1.1,1.2,1.15,1.1",  # low > min
                                 "2024-01-02T22:02:00Z,-1,1.2,1.0,1.1",    # negative
                                 "2024-01-02T22:02:00Z,1.1,1.2,,1.1",      # missing (NaN)
                                 "not a time,1.1,1.2,1.0,1.1"])
def test_a_bad_generic_line_is_named_by_file_and_line(tmp_path, bad) -> None:
    path = _write(tmp_path, "timestamp,open,high,low,close\n"
                            "2024-01-02T22:00:00Z,1.1,1.2,1.0,1.1\n"
                            f"{bad}\n"
                            "2024-01-02T22:05:00Z,1.1,1.2,1.0,1.1\n")
    with pytest.raises(DataValidationError) as info:
        read_generic_csv(path)
    assert info.value.row == 3
    assert f"{path}, row 3" in str(info.value)


def test_the_first_bad_line_is_reported_when_several_are_bad(tmp_path) -> None:
    rows = [f"20240102 17{m:02d}00;1.1;1.2;1.0;1.1;0" for m in range(10)]
    rows[7] = "20240102 170700;1.1;1.05;1.0;1.1;0"   # high < max at line 8
    rows[4] = "20240102 170400;1.1;1.2;1.15;1.1;0"   # low > min at line 5 (first)
    with pytest.raises(DataValidationError) as info:
        read_histdata_csv(_write(tmp_path, "\n".join(rows)))
    assert info.value.row == 5


def test_a_line_with_too_many_fields_is_named(tmp_path) -> None:
    path = _write(tmp_path, "\n".join([GOOD[0], GOOD[1] + ";9;9"]))
    with pytest.raises(DataValidationError) as info:
        read_histdata_csv(path)
    assert info.value.row == 2 and str(path) in str(info.value)


def test_an_empty_file_is_rejected(tmp_path) -> None:
    with pytest.raises(DataValidationError, match="empty"):
        read_csv_candles(_write(tmp_path, ""))
