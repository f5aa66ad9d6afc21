"""One month of one epic's candles on disk: an uncompressed Arrow IPC file.

Reads memory-map the file and hand out numpy views of the mapped pages (no copy into the
process); opened months are cached per process keyed by (path, mtime_ns, size, inode), so a
rewritten file is reopened and an unchanged one reuses its map. Writes go to a temporary file
in the same folder that replaces the old one with ``os.replace``: readers holding the old
map keep a valid (old) inode, and a failed write leaves the old file untouched.
"""

from __future__ import annotations

import calendar
import errno
import os
import tempfile
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa

from btpipeline.data.candles import FIELDS, Candles
from btpipeline.data.schema import CANDLE_SCHEMA, candles_to_table, schema_problem, table_to_candles
from btpipeline.data.timestamps import iso_utc, month_bounds_ns
from btpipeline.data.validation import validate_candles
from btpipeline.errors import CorruptDataFileError, DataValidationError, StorageFullError
from btpipeline.folders import make_dirs

_CacheKey = tuple[int, int, int]
_cache: dict[Path, tuple[_CacheKey, Candles]] = {}
_cache_lock = threading.Lock()


def regenerate_fix(path: Path, epic: str, year: int, month: int) -> str:
    last = calendar.monthrange(year, month)[1]
    return (f"delete {path} and re-import that month with `btpipeline import FILE --epic {epic}` "
            f"or regenerate it with `btpipeline generate --epics {epic} "
            f"--start {year:04d}-{month:02d}-01 --end {year:04d}-{month:02d}-{last:02d}`")


def _corrupt(path: Path, epic: str, year: int, month: int, problem: str) -> CorruptDataFileError:
    return CorruptDataFileError(f"Stored candle file {path} is unreadable: {problem}. "
                                f"Fix: {regenerate_fix(path, epic, year, month)}.")


def _map(path: Path, epic: str, year: int, month: int) -> Candles:
    """Memory-map ``path`` and check its schema and contents (no data is copied)."""
    try:
        reader = pa.ipc.open_file(pa.memory_map(str(path), "r"))
        problem = schema_problem(reader.schema)
        if problem is not None:
            raise _corrupt(path, epic, year, month, f"wrong schema: {problem}")
        candles = table_to_candles(reader.read_all())
    except (pa.ArrowException, OSError, ValueError) as error:
        if isinstance(error, CorruptDataFileError):
            raise
        raise _corrupt(path, epic, year, month,
                       f"not a valid Arrow IPC file or has nulls ({error})") from None
    _check_contents(candles, path, epic, year, month)
    return candles


def _check_contents(candles: Candles, path: Path, epic: str, year: int, month: int) -> None:
    try:
        validate_candles(candles, source=str(path))
    except DataValidationError as error:
        raise _corrupt(path, epic, year, month, str(error)) from None
    start, end = month_bounds_ns(year, month)
    if len(candles) and (candles.timestamp[0] < start or candles.timestamp[-1] >= end):
        raise _corrupt(path, epic, year, month, f"bars from {iso_utc(candles.timestamp[0])} "
                       f"to {iso_utc(candles.timestamp[-1])} are not all in {year:04d}-{month:02d}")


def read_month_file(path: Path, epic: str, year: int, month: int) -> Candles:
    """The candles of a month file as read-only views of its memory map (cached)."""
    stat = path.stat()
    key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
    with _cache_lock:
        hit = _cache.get(path)
    if hit is not None and hit[0] == key:
        return hit[1]
    candles = _map(path, epic, year, month)
    with _cache_lock:
        _cache[path] = (key, candles)
    return candles


def forget(path: Path) -> None:
    """Drop ``path`` from the cache (after this process rewrote or removed it)."""
    with _cache_lock:
        _cache.pop(path, None)


def write_month_file(path: Path, candles: Candles) -> None:
    """Write ``candles`` to ``path`` atomically (same-folder temp file, fsync, os.replace).
    A full disk raises ``StorageFullError`` and leaves the previous file as it was."""
    make_dirs(path.parent)
    try:
        _write_atomically(path, candles)
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFullError(
                f"No space left on the disk holding {path.parent} while writing {path.name} "
                f"({error.strerror}); the stored month is unchanged. Fix: free space on that "
                "disk (or move BTPIPELINE_DATA_DIR to a larger one) and run again.") from None
        raise
    forget(path)


def _write_atomically(path: Path, candles: Candles) -> None:
    table = candles_to_table(candles)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        with pa.OSFile(temp_name, "wb") as sink:
            with pa.ipc.new_file(sink, CANDLE_SCHEMA) as writer:
                writer.write_table(table, max_chunksize=max(len(candles), 1))
        with open(temp_name, "rb+") as synced:
            os.fsync(synced.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def merge(old: Candles, new: Candles) -> Candles:
    """``old`` and ``new`` bars in time order; a ``new`` bar replaces an ``old`` one at the same
    timestamp. Both inputs must be sorted; the result is a fresh (writable) copy."""
    if len(old) == 0 or len(new) == 0:
        return Candles.concat([old, new])
    at = np.minimum(np.searchsorted(new.timestamp, old.timestamp), len(new) - 1)
    keep = new.timestamp[at] != old.timestamp
    order = np.argsort(np.concatenate((old.timestamp[keep], new.timestamp)), kind="stable")
    return Candles(*(np.concatenate((getattr(old, f)[keep], getattr(new, f)))[order]
                     for f in FIELDS))
