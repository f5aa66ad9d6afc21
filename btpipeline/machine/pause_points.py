"""Critical sections a worker must not be SIGSTOPped inside (cooperative pausing).

The executor's fast path pauses workers with SIGSTOP. Stopping one in the middle of a database
write would keep its lock while it sleeps: SQLite blocks every other writer of that file (the
run's own event log, the daemon, a scanner sharing the results file), a PostgreSQL transaction
holds its row locks. That is priority inversion: the pause meant to help the scanner blocks it.

So the writes that take locks run inside :func:`critical_section`. Each worker shares two
integers with its run process (:class:`PauseFlags`, shared memory): how deep it is in critical
sections, and whether a pause was requested. The guard stops a worker only outside a critical
section; inside one it sets the request, and the worker stops itself (SIGSTOP to itself) when it
leaves the outermost section. Outside a worker (tests, the scanner, the webserver) the context
manager does nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from typing import Any

DEPTH, REQUESTED = 0, 1

_flags: Any = None  # this process's shared flags, once installed by the worker


class PauseFlags:
    """The two shared integers of one worker (a ``multiprocessing`` RawArray of 2 ints)."""

    def __init__(self, mp_context: Any) -> None:
        self.array = mp_context.RawArray("i", 2)

    @property
    def in_critical_section(self) -> bool:
        return self.array[DEPTH] > 0

    def request_pause(self) -> None:
        self.array[REQUESTED] = 1

    def clear_request(self) -> None:
        self.array[REQUESTED] = 0


def install(array: Any) -> None:
    """Called once in the worker with its shared array."""
    global _flags
    _flags = array


@contextlib.contextmanager
def critical_section() -> Iterator[None]:
    """Run the block unstopped; honour a pause requested meanwhile when it ends."""
    flags = _flags
    if flags is None:
        yield
        return
    flags[DEPTH] += 1
    try:
        yield
    finally:
        flags[DEPTH] -= 1
        if flags[DEPTH] == 0 and flags[REQUESTED]:
            os.kill(os.getpid(), signal.SIGSTOP)  # resumed by the guard's SIGCONT
