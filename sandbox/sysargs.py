"""Syscall arguments as the kernel reads them, and descriptors taken from a caller."""
from __future__ import annotations


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
