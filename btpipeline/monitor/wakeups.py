"""What wakes the executor's fast path between its samples: the kernel, not a timer alone.

The load guard blocks in ``poll()`` on these file descriptors with its sampling interval as
the timeout, so it samples at once when one fires and at the interval otherwise:

* **the scanner's heartbeat** (inotify on the status file's folder): the scanner rewrites its
  status after every tick, so a tick that ran over its budget is acted on the moment it is
  published, not up to an interval later;
* **a PSI trigger** (``poll()`` with ``POLLPRI`` on a ``cpu.pressure`` file after writing
  ``"some <stall us> <window us>"``): the kernel wakes the guard when that cgroup stalled on
  CPU longer than the threshold within the window. Armed on the scanner's own cgroup v2 group
  only: the scanner's own stall is the direct signal, while the machine's pressure
  (``/proc/pressure/cpu``, or the root group a scanner outside any group sits in) is high
  whenever backtests fill the cores and would wake the guard all the time.

Where the kernel offers neither (not Linux, no inotify, no cgroup v2, a scanner in the root
group, a kernel refusing the trigger's window) the guard polls at its interval as before;
:meth:`Wakeups.describe` says which sources are armed and why the others are not.

PSI triggers need ``CAP_SYS_RESOURCE`` for windows under 2 s; without it (containers, VMs
that drop it even for root) the kernel takes multiples of 2 s only and checks them at its
2 s averaging cadence, so they wake the guard 0.5-2 s after the stall starts: a wake-up for
a scanner starved for seconds, never the sub-100 ms reaction the CPU signal gives.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import select
import struct
import sys
import time
from pathlib import Path

#: inotify event masks (linux/inotify.h): a file written and closed, renamed or created in
#: the watched folder (the heartbeat is written to a temp file, then renamed over the status).
IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE, IN_IGNORED = 0x08, 0x80, 0x100, 0x8000
IN_NONBLOCK, IN_CLOEXEC = os.O_NONBLOCK, 0o2000000
#: PSI trigger windows the kernel may take, shortest first: 500 ms needs CAP_SYS_RESOURCE,
#: 2 s is the unprivileged minimum.
PSI_WINDOWS_US = (500_000, 2_000_000)
#: How often a missing heartbeat folder is looked for again (the scanner may start later).
RETRY_WATCH_S = 1.0


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not sys.platform.startswith("linux") or name is None:
        return None
    try:
        return ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None


class HeartbeatWatch:
    """An inotify fd that becomes readable whenever the scanner's status folder changes."""

    name = "heartbeat"

    def __init__(self, status_path: Path) -> None:
        self.status_path = status_path
        self.fd: int | None = None
        self.problem: str | None = None
        self._watching = False
        self._next_try = 0.0
        libc = _libc()
        if libc is None:
            self.problem = "inotify needs Linux"
            return
        self._libc = libc
        fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            self.problem = f"inotify_init1 failed: {os.strerror(ctypes.get_errno())}"
            return
        self.fd = fd
        self.ensure_watch()

    def ensure_watch(self) -> bool:
        """Watch the status file's folder once it exists (tried again every second)."""
        if self._watching or self.fd is None or time.monotonic() < self._next_try:
            return self._watching
        self._next_try = time.monotonic() + RETRY_WATCH_S
        folder = os.fsencode(self.status_path.parent)
        wd = self._libc.inotify_add_watch(self.fd, folder, IN_CLOSE_WRITE | IN_MOVED_TO
                                          | IN_CREATE)
        if wd < 0:
            code = ctypes.get_errno()
            self.problem = f"cannot watch {self.status_path.parent}: {os.strerror(code)}"
            return False
        self._watching, self.problem = True, None
        return True

    def drain(self) -> bool:
        """Read the queued events; True when one named the status file."""
        if self.fd is None:
            return False
        mine = False
        while True:
            try:
                data = os.read(self.fd, 4096)
            except BlockingIOError:
                return mine
            offset = 0
            while offset + 16 <= len(data):
                _wd, mask, _cookie, size = struct.unpack_from("iIII", data, offset)
                name = data[offset + 16:offset + 16 + size].rstrip(b"\0")
                mine = mine or name == os.fsencode(self.status_path.name)
                if mask & IN_IGNORED:  # the folder went away: watch it again once it is back
                    self._watching = False
                offset += 16 + size

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class PressureTrigger:
    """A PSI trigger on one ``cpu.pressure`` file: readable (POLLPRI) after a stall."""

    name = "psi"

    def __init__(self, pressure_file: Path, stall_fraction: float) -> None:
        self.pressure_file = pressure_file
        self.fd: int | None = None
        self.spec = ""
        self.problem: str | None = None
        refusals = []
        for window in PSI_WINDOWS_US:
            spec = f"some {max(1, int(window * stall_fraction))} {window}"
            try:
                fd = os.open(pressure_file, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as exc:
                self.problem = f"cannot open {pressure_file}: {exc.strerror}"
                return
            try:
                os.write(fd, spec.encode() + b"\0")
            except OSError as exc:
                os.close(fd)
                refusals.append(f"{spec!r}: {exc.strerror}")
                continue
            self.fd, self.spec = fd, spec
            return
        self.problem = (f"the kernel refused every trigger on {pressure_file} "
                        f"({'; '.join(refusals)})")

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def cgroup_v2_mount(mountinfo: Path = Path("/proc/self/mountinfo")) -> Path | None:
    """Where the cgroup v2 hierarchy is mounted (``/sys/fs/cgroup`` or ``.../unified``)."""
    try:
        lines = mountinfo.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        before, _, after = line.partition(" - ")
        if after.split(" ", 1)[0] == "cgroup2":
            return Path(before.split()[4])
    return None


def cgroup_pressure_file(pid: int) -> tuple[Path | None, str]:
    """``cpu.pressure`` of ``pid``'s own cgroup v2 group, or None and why not."""
    mount = cgroup_v2_mount()
    if mount is None:
        return None, "no cgroup v2 hierarchy mounted"
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError as exc:
        return None, f"cannot read the scanner's cgroup: {exc.strerror}"
    group = next((line[3:] for line in lines if line.startswith("0::")), None)
    if group is None:
        return None, "the scanner is in no cgroup v2 group"
    if group in ("", "/"):
        return None, ("the scanner runs in the root cgroup, whose pressure is the whole "
                      "machine's (high whenever backtests fill the cores); start it in its own "
                      "group (e.g. a systemd service) to watch its own stall")
    path = mount / group.lstrip("/") / "cpu.pressure"
    return (path, "") if path.exists() else (None, f"{path} does not exist")


class Wakeups:
    """The armed sources; :meth:`wait` blocks until one fires or the timeout passes."""

    def __init__(self, status_path: Path | None, *, psi_stall_fraction: float = 0.1,
                 heartbeat: bool = True) -> None:
        self._poll = select.poll()
        self.heartbeat: HeartbeatWatch | None = None
        self.trigger: PressureTrigger | None = None
        self._psi_fraction = psi_stall_fraction
        self._trigger_pid: int | None = None
        self._interrupt_r, self._interrupt_w = os.pipe()  # close-on-exec since Python 3.4
        for fd in (self._interrupt_r, self._interrupt_w):
            os.set_blocking(fd, False)
        self._poll.register(self._interrupt_r, select.POLLIN)
        if status_path is not None and heartbeat:
            self.heartbeat = HeartbeatWatch(status_path)
            if self.heartbeat.fd is not None:
                self._poll.register(self.heartbeat.fd, select.POLLIN)
        self._psi_problem = "no live scanner seen yet"

    def arm_pressure(self, pid: int | None) -> None:
        """(Re-)arm the PSI trigger on the scanner ``pid``'s own group (a new scanner pid, a
        new group); None disarms it."""
        if pid == self._trigger_pid:
            return
        self._trigger_pid = pid
        if self.trigger is not None and self.trigger.fd is not None:
            self._poll.unregister(self.trigger.fd)
            self.trigger.close()
        self.trigger = None
        if pid is None:
            self._psi_problem = "no live scanner"
            return
        path, why = cgroup_pressure_file(pid)
        if path is None:
            self._psi_problem = why
            return
        self.watch_pressure(path)

    def watch_pressure(self, pressure_file: Path) -> bool:
        """Arm a trigger on ``pressure_file`` (a ``cpu.pressure``); False, and the reason in
        :meth:`describe`, when the kernel refuses."""
        trigger = PressureTrigger(pressure_file, self._psi_fraction)
        if trigger.fd is None:
            self._psi_problem = trigger.problem or "refused"
            return False
        self.trigger = trigger
        self._poll.register(trigger.fd, select.POLLPRI)
        return True

    def wait(self, timeout_s: float) -> tuple[str, ...]:
        """Block up to ``timeout_s``; the names of the sources that fired (empty: timeout)."""
        if self.heartbeat is not None:
            self.heartbeat.ensure_watch()
        try:
            ready = self._poll.poll(max(0.0, timeout_s) * 1000.0)
        except InterruptedError:
            return ()
        except OSError as exc:
            if exc.errno != errno.EINTR:
                raise
            return ()
        fired: list[str] = []
        for fd, mask in ready:
            if fd == self._interrupt_r:
                _drain(fd)
                fired.append("interrupt")
            elif self.heartbeat is not None and fd == self.heartbeat.fd:
                if self.heartbeat.drain():
                    fired.append(HeartbeatWatch.name)
            elif self.trigger is not None and fd == self.trigger.fd:
                if mask & select.POLLERR:  # the group went away
                    self.arm_pressure(None)
                else:
                    fired.append(PressureTrigger.name)
        return tuple(fired)

    def interrupt(self) -> None:
        """Wake a :meth:`wait` in another thread at once (the guard is stopping)."""
        try:
            os.write(self._interrupt_w, b"x")
        except OSError:  # full (already woken) or closed
            pass

    def describe(self) -> str:
        """One line for the run's log: what wakes the guard besides its interval."""
        armed, missing = [], []
        if self.heartbeat is None:
            missing.append("heartbeat: no status file to watch")
        elif self.heartbeat.fd is None or self.heartbeat.problem:
            missing.append(f"heartbeat: {self.heartbeat.problem or 'closed'}")
        else:
            armed.append(f"the scanner's heartbeat ({self.heartbeat.status_path.parent})")
        if self.trigger is not None:
            armed.append(f"a PSI trigger {self.trigger.spec!r} on {self.trigger.pressure_file}")
        else:
            missing.append(f"PSI trigger: {self._psi_problem}")
        text = ("woken by " + " and ".join(armed)) if armed else "polling only"
        return text + ("" if not missing else f" (not armed: {'; '.join(missing)})")

    def close(self) -> None:
        for source in (self.heartbeat, self.trigger):
            if source is not None:
                source.close()
        for fd in (self._interrupt_r, self._interrupt_w):
            os.close(fd)
        self._interrupt_r = self._interrupt_w = -1


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass
