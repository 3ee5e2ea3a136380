"""Facts about tasks for the core and the requests (thin wrappers over csrc/procinfo.c)."""
from __future__ import annotations

import fcntl
import os
import select
import struct

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


def _ns_of(tid: int, kind: str) -> int | None:
    try:
        return os.stat(f"/proc/{tid}/ns/{kind}").st_ino
    except OSError:
        return None


def userns_of(tid: int) -> int | None:
    return _ns_of(tid, "user")


NS_GET_PARENT = 0xB702        # _IO(0xb7, 0x2)


NS_GET_OWNER_UID = 0xB704    # _IO(0xb7, 0x4)


def ns_capable(caller_ns: int, caller_euid: int | None, has_cap: bool, tid: int) -> bool:
    """The kernel's cap_capable(cred, target_ns, cap): walking up from tid's
    user namespace, the capability counts where the walk meets the caller's
    namespace (has_cap: it is in the caller's effective set), and in a
    namespace whose parent is the caller's and whose owner is the caller's
    euid (the owner of a namespace holds every capability in it)."""
    try:
        fd = os.open(f"/proc/{tid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        for _ in range(33):                    # the kernel nests at most 32 deep
            if os.fstat(fd).st_ino == caller_ns:
                return has_cap
            try:
                parent = fcntl.ioctl(fd, NS_GET_PARENT)
            except OSError:                    # the top, or beyond what we may see
                return False
            owner = None
            if caller_euid is not None:                # None: the owner rule is not asked
                try:
                    owner = struct.unpack("I", fcntl.ioctl(fd, NS_GET_OWNER_UID, b"\0" * 4))[0]
                except OSError:
                    pass
            os.close(fd)
            fd = parent
            if owner is not None and owner == caller_euid and os.fstat(fd).st_ino == caller_ns:
                return True
        return False
    finally:
        os.close(fd)


_OWN_PIDNS = _ns_of(os.getpid(), "pid")


def _nspid(tid: int) -> list[int]:
    try:
        with open(f"/proc/{tid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"NSpid:"):
                    return [int(x) for x in line.split()[1:]]
    except (OSError, ValueError):
        pass
    return []


def caller_pid(caller_tid: int, pid: int) -> int | None:
    """The task a caller names by pid, as a pid of the supervisor's namespace.

    A caller in another pid namespace (unshare -p, a browser's sandbox) means
    a number of its own namespace; looked up as ours it would name another
    task. Only tasks whose own namespace is the caller's are found that way;
    None means no such task (or one in a deeper namespace: fail closed)."""
    ns = _ns_of(caller_tid, "pid")
    if ns is None:
        return None
    if ns == _OWN_PIDNS:
        return pid
    for proc in os.listdir("/proc"):
        if not proc.isdigit():
            continue
        try:
            tids = os.listdir(f"/proc/{proc}/task")
        except OSError:
            continue
        for tid in map(int, tids):
            nspid = _nspid(tid)
            if nspid and nspid[-1] == pid and _ns_of(tid, "pid") == ns:
                return tid
    return None


class TaskHandle:
    """A task pinned by a pidfd: it knows when *that* task is gone, so a reused
    pid never inherits what was recorded about the old one."""

    __slots__ = ("pid", "tgid", "_pidfd")

    def __init__(self, pid: int, tgid: int, thread: bool):
        self._pidfd = -1                 # so that a failed open still closes cleanly
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
