"""Facts about tasks for the core and the requests (thin wrappers over csrc/procinfo.c)."""
from __future__ import annotations

import os
import select

from ._yama import ffi, lib

CAP_SYS_PTRACE = 19
PIDFD_THREAD = os.O_EXCL


def tgid_of(tid: int) -> int | None:
    tgid = lib.yr_tgid_of(tid)
    return tgid if tgid > 0 else None


def ppid_of(pid: int) -> int | None:
    ppid = lib.yr_ppid_of(pid)
    return ppid if ppid >= 0 else None


def tracer_of(pid: int) -> int:
    """The tid that ptraces pid, 0 for none (or pid gone)."""
    return max(lib.yr_tracer_of(pid), 0)


def is_descendant(ancestor_tgid: int, tid: int) -> bool:
    return lib.yr_is_descendant(ancestor_tgid, tid) == 1


def cap_effective(tid: int) -> int | None:
    out = ffi.new("uint64_t *")
    return out[0] if lib.yr_cap_effective(tid, out) == 0 else None


def comm_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().rstrip(b"\n").decode(errors="replace")
    except OSError:
        return "?"


def userns_of(tid: int) -> int | None:
    try:
        return os.stat(f"/proc/{tid}/ns/user").st_ino
    except OSError:
        return None


class TaskHandle:
    """A task pinned by a pidfd: it knows when *that* task is gone, so a reused
    pid never inherits what was recorded about the old one."""

    __slots__ = ("pid", "tgid", "_pidfd")

    def __init__(self, pid: int, tgid: int, thread: bool):
        self.pid = pid
        self.tgid = tgid
        self._pidfd = os.pidfd_open(pid, PIDFD_THREAD if thread else 0)

    def alive(self) -> bool:
        if self._pidfd < 0:
            return False
        poller = select.poll()
        poller.register(self._pidfd, select.POLLIN)
        if poller.poll(0):
            self.close()
            return False
        return True

    def close(self) -> None:
        if self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1

    def __del__(self):
        self.close()

    def __repr__(self):
        return f"TaskHandle(pid={self.pid}, tgid={self.tgid})"
