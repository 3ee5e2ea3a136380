"""The program's lifetime seen from yama-run: the tree reaped, signals
forwarded, the exit status given."""
from __future__ import annotations

import os
import signal

from ._yama import lib

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
SI_KERNEL = 0x80

EXIT_SETUP = 125
EXIT_NOEXEC = 126
EXIT_NOTFOUND = 127


def reap_all(main_pid: int) -> int:
    """Wait until no descendant is left; forward signals meanwhile."""
    status = None
    wanted = set(FORWARDED) | {signal.SIGCHLD}
    while True:
        while True:
            try:
                pid, raw = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return status if status is not None else EXIT_SETUP
            if pid == 0:
                break
            if os.WIFSTOPPED(raw):      # it called PTRACE_TRACEME: we trace no one
                lib.yr_ptrace_release(pid, os.WSTOPSIG(raw))
                continue
            if pid == main_pid:
                status = os.waitstatus_to_exitcode(raw)
                status = 128 - status if status < 0 else status
        info = signal.sigwaitinfo(wanted)
        if info.si_signo != signal.SIGCHLD and info.si_code != SI_KERNEL and status is None:
            # From the terminal (SI_KERNEL) the program got it already: same group.
            try:
                os.kill(main_pid, info.si_signo)
            except ProcessLookupError:
                pass
