"""Syscall arguments as the kernel reads them, and descriptors taken from a caller."""
from __future__ import annotations

import errno

from ._yama import lib


def int_arg(value: int) -> int:
    """An int-typed syscall argument, as the kernel truncates it."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


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


def take_fd(tgid: int, fd: int) -> tuple[int, int]:
    """(our copy of the caller's descriptor fd, 0), or (-1, the errno the
    caller gets: EBADF for a number it does not hold). The copy is ours to
    close; it names the same object however the caller's table changes."""
    copy = lib.yr_fetch_fd(tgid, fd)
    if copy >= 0:
        return copy, 0
    return -1, errno.EBADF if -copy == errno.EBADF else -copy
