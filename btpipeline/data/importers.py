"""Reading 1-minute candle CSV files: HistData.com's generic ASCII format and headed CSVs.

Both readers use pandas' C parser, keep each bar's line number in the file, and validate with
``validate_candles`` so every error names the file and the line to fix. Blank lines are skipped
(but still counted, so line numbers match what an editor shows).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from btpipeline.data.candles import Candles
from btpipeline.data.schema import PRICE_FIELDS
from btpipeline.data.validation import validate_candles
from btpipeline.errors import DataValidationError, InvalidParameterError, MissingDataError

FORMATS = ("auto", "histdata", "generic")
HISTDATA_COLUMNS = ("time", "open", "high", "low", "close", "volume")
EST_TO_UTC_NS = 5 * 3600 * 1_000_000_000  # HistData's EST is fixed UTC-5, all year
_HISTDATA_LINE = re.compile(r"^\s*\d{8} \d{6};")
_FIX_FORMAT = "correct that line (or delete it) and import the file again"


def _read_frame(path: Path, **options: object) -> pd.DataFrame:
    """``pd.read_csv`` with its failures turned into errors that name the file and line."""
    source = str(path)
    try:
        # utf-8-sig: a byte-order mark (Excel, Windows editors) is not part of the first name.
        return pd.read_csv(path, engine="c", skip_blank_lines=False, encoding="utf-8-sig",
                           **options)
    except IsADirectoryError:
        raise MissingDataError(f"{source} is a folder, not a CSV file. Fix: pass the path of "
                               "one CSV file inside it (import each file in turn).") from None
    except FileNotFoundError:
        raise MissingDataError(f"CSV file {source} does not exist. Fix: check the path "
                               "(relative paths are from the current directory).") from None
    except pd.errors.EmptyDataError:
        raise DataValidationError(source, None, "the file is empty",
                                  "export the candles again; the file has no rows") from None
    except pd.errors.ParserError as error:
        line = re.search(r"line (\d+)", str(error))
        raise DataValidationError(source, int(line.group(1)) if line else None,
                                  f"a line has the wrong number of fields ({error})",
                                  _FIX_FORMAT) from None
    except UnicodeDecodeError as error:
        raise DataValidationError(source, None, f"not a UTF-8 text file ({error})",
                                  "export the candles as a plain-text CSV") from None


def _drop_blank(frame: pd.DataFrame, first_line: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The non-blank rows and each one's line number in the file (``first_line`` = row 0)."""
    lines = np.arange(first_line, first_line + len(frame), dtype=np.int64)
    blank = frame.isna().all(axis=1).to_numpy()
    if blank.any():
        frame, lines = frame.loc[~blank], lines[~blank]
    return frame, lines


def _numbers(column: pd.Series, name: str, lines: np.ndarray, source: str) -> np.ndarray:
    """``column`` as float64; a value that is not a number raises naming its line.

    Empty fields become NaN and are reported by ``validate_candles`` as NaN prices.
    """
    if pd.api.types.is_numeric_dtype(column.dtype):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    parsed = pd.to_numeric(column, errors="coerce")
    bad = (parsed.isna() & column.notna()).to_numpy()
    if bad.any():
        i = int(bad.argmax())
        raise DataValidationError(source, int(lines[i]),
                                  f"{name} value {column.iloc[i]!r} is not a number", _FIX_FORMAT)
    return parsed.to_numpy(dtype=np.float64, na_value=np.nan)


def _datetimes_ns(parsed: pd.Series, raw: pd.Series, lines: np.ndarray, source: str,
                  expected: str) -> np.ndarray:
    """int64 UTC nanoseconds of parsed datetimes; the first unparsable one raises."""
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(bad.argmax())
        raise DataValidationError(source, int(lines[i]), f"timestamp {raw.iloc[i]!r} is not "
                                  f"{expected}", _FIX_FORMAT)
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.dt.as_unit("ns").to_numpy().view(np.int64)


def _candles(frame: pd.DataFrame, timestamp_ns: np.ndarray, lines: np.ndarray,
             source: str, volume: np.ndarray | None) -> Candles:
    prices = [_numbers(frame[name], name, lines, source) for name in PRICE_FIELDS]
    if volume is None:
        volume = np.zeros(len(frame), dtype=np.float64)
    open_, high, low, close = prices
    candles = Candles(np.ascontiguousarray(timestamp_ns), open_, high, low, close, volume)
    if len(candles) == 0:
        raise DataValidationError(source, None, "the file has no candle rows",
                                  "export the candles again; the file has no data lines")
    validate_candles(candles, source=source, row_numbers=lines)
    return candles


def _histdata_times_ns(raw: pd.Series, lines: np.ndarray, source: str) -> np.ndarray:
    """Epoch ns of ``YYYYMMDD HHMMSS`` strings, parsed as digit codes with numpy.

    ``pd.to_datetime`` with a strptime format takes ~1 s per year of minutes; this ~0.2 s.
    Non-ASCII text fails the digit checks (or the bytes conversion) and is reported.
    """
    try:
        text = raw.fillna("").to_numpy(dtype="S16")
    except UnicodeEncodeError:
        text = raw.fillna("").str.encode("ascii", errors="replace").to_numpy(dtype="S16")
    codes = text.view(np.uint8).reshape(len(raw), 16)
    digits = codes.astype(np.int32) - ord("0")  # columns 8 (space) and 15 (end) are not digits
    is_digit = (digits >= 0) & (digits <= 9)
    ok = is_digit[:, :8].all(axis=1) & is_digit[:, 9:15].all(axis=1) \
        & (codes[:, 8] == ord(" ")) & (codes[:, 15] == 0)
    year = (digits[:, 0] * 1000 + digits[:, 1] * 100 + digits[:, 2] * 10 + digits[:, 3]).astype(
        np.int64)
    month, day, hour, minute, second = ((digits[:, i] * 10 + digits[:, i + 1]).astype(np.int64)
                                        for i in (4, 6, 9, 11, 13))
    month_start = ((year - 1970) * 12 + month - 1).astype("datetime64[M]")
    date = month_start.astype("datetime64[D]") + (day - 1)
    ok &= (month >= 1) & (month <= 12) & (day >= 1) & (date.astype("datetime64[M]") == month_start)
    ok &= (hour < 24) & (minute < 60) & (second < 60)
    if not ok.all():
        i = int((~ok).argmax())
        raise DataValidationError(source, int(lines[i]), f"timestamp {raw.iloc[i]!r} is not in "
                                  "HistData's 'YYYYMMDD HHMMSS' form", _FIX_FORMAT)
    seconds = date.astype(np.int64) * 86_400 + hour * 3600 + minute * 60 + second
    return seconds * 1_000_000_000


def read_histdata_csv(path: Path | str) -> Candles:
    """Candles of a HistData.com generic ASCII 1-minute file.

    Lines are ``YYYYMMDD HHMMSS;open;high;low;close;volume`` with no header. HistData stamps
    bars in Eastern Standard Time WITHOUT daylight saving, i.e. a fixed UTC-5 all year, so
    every timestamp is shifted by +5 hours to UTC (``20240102 170000`` -> 22:00 UTC).
    """
    path, source = Path(path), str(path)
    frame = _read_frame(path, sep=";", header=None, names=list(HISTDATA_COLUMNS),
                        dtype={"time": str}, index_col=False)
    frame, lines = _drop_blank(frame, first_line=1)
    est_ns = _histdata_times_ns(frame["time"], lines, source)
    volume = _numbers(frame["volume"], "volume", lines, source)
    return _candles(frame, est_ns + EST_TO_UTC_NS, lines, source, volume)


def _epoch_ns(values: np.ndarray) -> np.ndarray:
    """Epoch numbers to nanoseconds, the unit told apart by magnitude.

    Below 1e11 are seconds (up to year 5138), below 1e14 milliseconds, below 1e17
    microseconds, anything larger nanoseconds.
    """
    biggest = float(np.abs(values).max()) if values.size else 0.0
    factor = next(f for limit, f in ((1e11, 10**9), (1e14, 10**6), (1e17, 10**3),
                                     (float("inf"), 1)) if biggest < limit)
    if values.dtype.kind in "iu":
        return values.astype(np.int64) * factor
    return np.round(values * factor).astype(np.int64)


def _generic_timestamps(raw: pd.Series, lines: np.ndarray, source: str) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(raw.dtype):
        values = raw.to_numpy()
        missing = np.isnan(values) if values.dtype.kind == "f" else np.zeros(len(values), bool)
        if missing.any():
            i = int(missing.argmax())
            raise DataValidationError(source, int(lines[i]), "the timestamp is empty",
                                      _FIX_FORMAT)
        return _epoch_ns(values)
    parsed = pd.to_datetime(raw, format="ISO8601", utc=True, errors="coerce")
    return _datetimes_ns(parsed, raw, lines, source,
                         "an ISO 8601 time (e.g. 2024-01-02T22:00:00Z) or epoch seconds/ms")


def _column_map(frame: pd.DataFrame, timestamp_column: str, source: str) -> dict[str, str]:
    """Lower-cased wanted name -> the file's own column name; missing ones raise."""
    found = {str(name).strip().lower(): str(name) for name in frame.columns}
    wanted = [timestamp_column.strip().lower(), *PRICE_FIELDS]
    missing = [name for name in wanted if name not in found]
    if missing:
        raise DataValidationError(
            source, 1, f"missing column(s) {missing}: expected columns {wanted} (+ optional "
            f"'volume', any case), found {list(map(str, frame.columns))}",
            _missing_columns_fix(frame, timestamp_column, missing))
    return {name: found[name] for name in (*wanted, "volume") if name in found}


def _missing_columns_fix(frame: pd.DataFrame, timestamp_column: str, missing: list[str]) -> str:
    """The header to write, or the timestamp column's name to give the importer."""
    if timestamp_column.strip().lower() not in missing:
        return "rename the header line's columns to those names, then import again"
    others = [str(c) for c in frame.columns
              if str(c).strip().lower() not in (*PRICE_FIELDS, "volume")]
    if any(c.startswith("Unnamed: ") for c in others):
        return ("the time column has no name: write 'timestamp' as its header (e.g. "
                "'timestamp,open,high,low,close'), then import again")
    guess = others[0] if others else "NAME"
    return (f"rename the time column's header to '{timestamp_column}', or name it: "
            f"`btpipeline import FILE --epic EPIC --timestamp-column {guess}` "
            f"(in Python: read_generic_csv(path, timestamp_column={guess!r}))")


def read_generic_csv(path: Path | str, timestamp_column: str = "timestamp") -> Candles:
    """Candles of a headed CSV with a timestamp column and open/high/low/close[/volume].

    Column names match case-insensitively; other columns are ignored. Timestamps are ISO 8601
    strings (naive ones are UTC; ones with an offset are converted to UTC) or epoch numbers in
    seconds, milliseconds, microseconds or nanoseconds (told apart by magnitude). A missing
    volume column means volume 0.
    """
    path, source = Path(path), str(path)
    frame = _read_frame(path, header=0, index_col=False)
    columns = _column_map(frame, timestamp_column, source)
    frame = frame.rename(columns={v: k for k, v in columns.items()})[list(columns)]
    frame, lines = _drop_blank(frame, first_line=2)
    timestamp_ns = _generic_timestamps(frame[timestamp_column.strip().lower()], lines, source)
    volume = _numbers(frame["volume"], "volume", lines, source) if "volume" in columns else None
    return _candles(frame, timestamp_ns, lines, source, volume)


def sniff_format(path: Path | str) -> str:
    """``"histdata"`` when the first non-blank line looks like HistData's, else ``"generic"``."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as handle:
            for line in handle:
                if line.strip():
                    return "histdata" if _HISTDATA_LINE.match(line) else "generic"
    except (FileNotFoundError, IsADirectoryError):
        pass  # the reader reports the missing file or folder with its fix
    return "generic"


def read_csv_candles(path: Path | str, fmt: str = "auto",
                     timestamp_column: str = "timestamp") -> Candles:
    """Candles of a CSV file in ``fmt`` (``"auto"`` sniffs HistData vs headed CSV);
    ``timestamp_column`` names a headed CSV's time column."""
    if fmt not in FORMATS:
        raise InvalidParameterError(f"Unknown CSV format {fmt!r}. Fix: use one of {FORMATS}.")
    if fmt == "auto":
        fmt = sniff_format(path)
    if fmt == "histdata":
        return read_histdata_csv(path)
    return read_generic_csv(path, timestamp_column=timestamp_column)
