"""Syscall arguments as the kernel reads them, and descriptors taken from a caller."""
from __future__ import annotations

import errno
import os

from ._yama import ffi, lib

PAGE_SIZE = 4096


def int_arg(value: int) -> int:
    """An int-typed syscall argument, as the kernel truncates it."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


# Linux 6.14+: numbers that name the caller's own thread or process where a
# pidfd is taken (pidfd_send_signal, process_madvise, process_mrelease); the
# kernel reads them from no descriptor table.
PIDFD_SELF_THREAD, PIDFD_SELF_THREAD_GROUP = -10000, -10001
PIDFD_SELF = frozenset({PIDFD_SELF_THREAD, PIDFD_SELF_THREAD_GROUP})


def pidfd_target(fd: int) -> int | None:
    """The pid a pidfd of ours refers to (-1 once it has exited), None if fd is not a pidfd."""
    try:
        with open(f"/proc/self/fdinfo/{fd}", "rb") as f:
            for line in f:
                if line.startswith(b"Pid:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _still_waits(caller) -> bool:
    """What was taken from the caller by its thread id is its own only if it
    still waits in its call after: a caller killed meanwhile frees its
    number, which another task (a new thread of ours) may take."""
    return caller.still_waits is None or bool(caller.still_waits())


def take_fd(caller, fd: int) -> tuple[int, int]:
    """(our copy of the caller's descriptor fd, 0), or (-1, the errno the
    caller gets: EBADF for a number it does not hold). Taken from the calling
    thread's own table, where the kernel looks (a thread that unshared
    CLONE_FILES holds other files than its leader). The copy is ours to
    close; it names the same object however the caller's table changes."""
    copy = lib.yr_fetch_thread_fd(caller.tid, caller.tgid, fd)
    if copy >= 0 and not _still_waits(caller):
        os.close(copy)
        return -1, errno.ESRCH              # nobody to answer: the caller is gone
    if copy >= 0:
        return copy, 0
    return -1, errno.EBADF if -copy == errno.EBADF else -copy


def read_caller(caller, addr: int, buf, size: int) -> bool:
    """size bytes of the caller's memory at addr into buf, read once (by its
    thread id: its own if it still waits after the read)."""
    return lib.yr_read_mem(caller.tid, addr, buf, size) == 0 and _still_waits(caller)


def read_caller_string(caller, addr: int, limit: int) -> bytes | None:
    """The caller's NUL-terminated string at addr, read as the kernel's
    strnlen_user and strncpy_from_user read it: at most limit bytes, a page at
    a time (a string that ends before an unreadable page is whole). Without
    its NUL; limit bytes long when none is in them; None when memory before
    the NUL cannot be read."""
    got = b""
    while len(got) < limit:
        here = (addr + len(got)) & 0xFFFFFFFFFFFFFFFF
        size = min(PAGE_SIZE - here % PAGE_SIZE, limit - len(got))
        buf = ffi.new("char[]", size)
        if not read_caller(caller, here, buf, size):
            return None
        part = ffi.buffer(buf)[:]
        end = part.find(b"\0")
        if end >= 0:
            return got + part[:end]
        got += part
    return got
