"""Which database errors are transient (retry), a full disk, or bad input (fail at once).

Classified from the driver's SQLSTATE (psycopg 3) or SQLite's error name, not from message
text where a code exists.
"""

from __future__ import annotations

import enum

# SQLSTATE classes/codes worth retrying: connection exceptions (08xxx), operator intervention
# (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now), serialization
# failure and deadlock (40001, 40P01), lock not available (55P03), too many connections
# (53300), query canceled by a lock or statement timeout (57014).
_TRANSIENT_CLASSES = ("08",)
_TRANSIENT_CODES = {"57P01", "57P02", "57P03", "40001", "40P01", "55P03", "53300", "57014"}
_DISK_FULL_CODES = {"53100"}
_SQLITE_TRANSIENT = {"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_BUSY_SNAPSHOT",
                     "SQLITE_BUSY_RECOVERY", "SQLITE_PROTOCOL"}
_SQLITE_DISK_FULL = {"SQLITE_FULL"}


class Fault(enum.Enum):
    TRANSIENT = "transient"
    DISK_FULL = "disk full"
    REFUSED = "refused"  # constraint, bad value, bad statement: the same input fails again
    OTHER = "other"      # not a database error at all


def classify(error: BaseException) -> Fault:
    """The kind of ``error`` (a SQLAlchemy error, or a driver error it wraps)."""
    orig = getattr(error, "orig", None) or error
    sqlstate = getattr(orig, "sqlstate", None)
    sqlite_name = getattr(orig, "sqlite_errorname", None)
    if sqlstate in _DISK_FULL_CODES or sqlite_name in _SQLITE_DISK_FULL:
        return Fault.DISK_FULL
    if sqlstate and (sqlstate[:2] in _TRANSIENT_CLASSES or sqlstate in _TRANSIENT_CODES):
        return Fault.TRANSIENT
    if sqlite_name in _SQLITE_TRANSIENT:
        return Fault.TRANSIENT
    if getattr(error, "connection_invalidated", False):
        return Fault.TRANSIENT
    if type(orig).__name__ == "OperationalError" and not sqlstate and not sqlite_name:
        return Fault.TRANSIENT  # psycopg: connection refused / closed before any SQLSTATE
    if hasattr(error, "orig") or hasattr(orig, "sqlstate"):
        return Fault.REFUSED
    return Fault.OTHER
