"""The supervisor out of the sandbox's reach.

Kernel-enforced where the kernel can (Landlock ABI 6+): the program starts in
a Landlock domain with the signal scope and no access rights handled, so no
signal from inside reaches a process outside the domain, and no ptrace-class
access (attach, process_vm_*, /proc/PID/mem, pidfd_getfd) does either, at any
ptrace scope. The supervisor is also made non-dumpable.

Without Landlock's signal scope the filter routes the kill family, the calls
that make a process the owner of a file (it is then signalled on I/O) and
every ptrace-class access, whatever the scope, to the supervisor, which
refuses those aimed at itself: see Fallback below."""
from __future__ import annotations

import errno
import os
import re
import resource
import struct

from . import procfs
from ._yama import ffi, lib
from .sysargs import int_arg, pidfd_target

LANDLOCK_SIGNAL_SCOPE_ABI = 6
PIDFD_SIGNAL_PROCESS_GROUP = 1 << 2
F_SETOWN, F_SETOWN_EX = 8, 15
F_OWNER_TID, F_OWNER_PID, F_OWNER_PGRP = 0, 1, 2


class Shield:
    """Which protection is in force; decided once, before the spawn."""

    def __init__(self):
        self.abi = lib.yr_landlock_abi()
        forced_off = os.environ.get("YAMA_RUN_NO_LANDLOCK") == "1"   # tests the fallback
        self.landlock = self.abi >= LANDLOCK_SIGNAL_SCOPE_ABI and not forced_off
        self.nondumpable = False

    def harden_supervisor(self) -> None:
        """After the spawn (the program inherits neither): non-dumpable, and
        every descriptor the hard limit allows, since the program decides how
        many the supervisor holds (two pidfds per PR_SET_PTRACER declaration)."""
        self.nondumpable = lib.yr_set_nondumpable() == 0
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != hard:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            except (ValueError, OSError):
                pass

    def describe(self) -> str:
        dumpable = ", non-dumpable" if self.nondumpable else ", dumpable (prctl failed)"
        if self.landlock:
            return (f"supervisor shielded by landlock (ABI {self.abi}: signal scope, "
                    f"ptrace domain){dumpable}")
        if os.environ.get("YAMA_RUN_NO_LANDLOCK") == "1":
            why = "landlock not used: YAMA_RUN_NO_LANDLOCK=1"
        elif self.abi > 0:
            why = f"landlock ABI {self.abi} lacks the signal scope"
        else:
            why = f"no landlock: {os.strerror(-self.abi)}"
        return (f"supervisor shielded by seccomp hooks ({why}: kill family, file "
                f"owners and ptrace access routed){dumpable}")


class Fallback:
    """The kill family, decided by the supervisor when Landlock cannot.

    A pid names a task for good while it lives, and the supervisor lives as
    long as it answers, so CONTINUE after "not the supervisor" has no race for
    pids. A pidfd can be swapped by another thread after a check, so
    pidfd_send_signal is performed here, on the supervisor's own copy."""

    def __init__(self, supervisor):
        self.sup = supervisor
        self.my_pgrp = os.getpgrp()

    def handlers(self) -> dict:
        """syscall name -> handler (names from the registry, csrc/syscalls.def)."""
        return {
            "kill": self.on_kill,
            "rt_sigqueueinfo": self.on_kill,
            "tkill": self.on_tkill,
            "tgkill": self.on_tgkill,
            "rt_tgsigqueueinfo": self.on_tgkill,
            "pidfd_send_signal": self.on_pidfd_send_signal,
            "fcntl": self.on_setown,
            "ioctl": self.on_setown,
        }

    # -- answers -------------------------------------------------------------

    def _refuse(self, ev, caller, what: str) -> None:
        self.sup.audit.say(f"refused {what} by {caller.describe()}: it would reach the supervisor")
        lib.yr_reply(self.sup.ctx, ev.id, 0, errno.EPERM)

    def _pass(self, ev) -> None:
        if lib.yr_id_valid(self.sup.ctx, ev.id):
            lib.yr_reply_continue(self.sup.ctx, ev.id)

    def _is_me(self, caller, pid: int) -> bool:
        """Does the caller's pid (a thread or process) name a supervisor thread?"""
        ours = procfs.caller_pid(caller.tid, pid) if pid > 0 else None
        return ours is not None and procfs.tgid_of(ours) in self.sup.protected_pids

    def _in_my_group(self, caller, pgrp: int) -> bool:
        """Is the process group the caller names (0: its own) the supervisor's?"""
        if pgrp == 0:
            return _pgrp_of(caller.tid) == self.my_pgrp
        ours = procfs.caller_pid(caller.tid, pgrp)
        return ours == self.my_pgrp

    # -- the kill family -------------------------------------------------------

    def on_kill(self, ev, caller) -> None:
        """kill and rt_sigqueueinfo: a process, a group (0, -pgrp), or all (-1)."""
        pid = int_arg(ev.args[0])
        if pid == -1:
            # Every process the caller may signal: that may include us.
            self._refuse(ev, caller, "a signal to every process (kill -1)")
        elif pid <= 0 and ev.sys == lib.YR_SYS_KILL and self._in_my_group(caller, -pid):
            self._kill_group_but_me(ev, caller, int_arg(ev.args[1]))
        elif pid <= 0 and self._in_my_group(caller, -pid):
            self._refuse(ev, caller, "a signal to the supervisor's process group")
        elif pid > 0 and self._is_me(caller, pid):
            self._refuse(ev, caller, f"signal {int_arg(ev.args[1])} to {pid}")
        else:
            self._pass(ev)

    def _kill_group_but_me(self, ev, caller, sig: int) -> None:
        """kill(0) or kill(-pgrp) of the group yama-run shares with the program
        (it keeps the terminal's foreground): sent here to every member but
        the supervisor, as the caller. Unlike the kernel's, this walk is not
        atomic: a process that joins the group meanwhile may be missed, and
        the receivers see yama-run's pid as the sender."""
        members = [pid for pid in _pids()
                   if pid not in self.sup.protected_pids and _pgrp_of(pid) == self.my_pgrp]
        arr = ffi.new("int32_t[]", members or [0])
        rc = lib.yr_kill_each_as(caller.creds, arr, len(members), sig)
        lib.yr_reply(self.sup.ctx, ev.id, 0, -rc if rc < 0 else 0)

    def on_tkill(self, ev, caller) -> None:
        if self._is_me(caller, int_arg(ev.args[0])):
            self._refuse(ev, caller, "tkill")
        else:
            self._pass(ev)

    def on_tgkill(self, ev, caller) -> None:
        tgid, tid = int_arg(ev.args[0]), int_arg(ev.args[1])
        if self._is_me(caller, tgid) or self._is_me(caller, tid):
            self._refuse(ev, caller, "tgkill")
        else:
            self._pass(ev)

    def on_pidfd_send_signal(self, ev, caller) -> None:
        pidfd, sig = int_arg(ev.args[0]), int_arg(ev.args[1])
        info, flags = ev.args[2], ev.args[3] & 0xFFFFFFFF
        ctx = self.sup.ctx
        copy = lib.yr_fetch_fd(caller.tgid, pidfd)
        if copy < 0:
            lib.yr_reply(ctx, ev.id, 0, errno.EBADF if -copy == errno.EBADF else -copy)
            return
        try:
            target = _target_of(copy)
            if target is None or (target > 0 and procfs.tgid_of(target) in self.sup.protected_pids) or (
                    flags & PIDFD_SIGNAL_PROCESS_GROUP and target > 0
                    and _pgrp_of(target) == self.my_pgrp):
                self._refuse(ev, caller, "pidfd_send_signal")
                return
            rc = lib.yr_pidfd_signal_as(caller.creds, caller.tid, copy, sig, info, flags)
            lib.yr_reply(ctx, ev.id, 0, -rc if rc < 0 else 0)
        finally:
            os.close(copy)


    # -- file owners: the kernel signals them on I/O (SIGIO, or F_SETSIG's) --------

    def _owner_is_me(self, caller, kind: int, pid: int) -> bool:
        if kind == F_OWNER_PGRP or (kind == F_OWNER_PID and pid < 0):
            return pid != 0 and self._in_my_group(caller, abs(pid))
        return pid > 0 and self._is_me(caller, pid)

    def on_setown(self, ev, caller) -> None:
        """fcntl F_SETOWN names the owner with an integer: decided on it, and
        let through. F_SETOWN_EX, FIOSETOWN and SIOCSPGRP read it from the
        caller's memory, which another thread may rewrite: read once here,
        and performed here on a copy of the descriptor, as the caller."""
        fd, cmd, arg = int_arg(ev.args[0]), int_arg(ev.args[1]), ev.args[2]
        if ev.sys == lib.YR_SYS_FCNTL and cmd == F_SETOWN:
            if self._owner_is_me(caller, F_OWNER_PID, int_arg(arg)):
                self._refuse(ev, caller, f"F_SETOWN {int_arg(arg)}")
            else:
                self._pass(ev)
            return
        size = 8 if cmd == F_SETOWN_EX else 4
        raw = ffi.new("char[]", size)
        have = lib.yr_read_mem(caller.tid, arg, raw, size) == 0
        if cmd == F_SETOWN_EX:
            kind, pid = struct.unpack("<ii", ffi.buffer(raw)) if have else (0, 0)
        else:
            kind, pid = F_OWNER_PID, struct.unpack("<i", ffi.buffer(raw))[0] if have else 0
        if have and self._owner_is_me(caller, kind, pid):
            self._refuse(ev, caller, "a file owner")
            return
        if have and pid and lib.yr_in_our_pidns(caller.tid) != 1:
            # its pid is a number of its own namespace; we would act on ours
            self._refuse(ev, caller, "a file owner named from another pid namespace")
            return
        copy = lib.yr_fetch_fd(caller.tgid, fd)
        if copy < 0:
            lib.yr_reply(self.sup.ctx, ev.id, 0, errno.EBADF if -copy == errno.EBADF else -copy)
            return
        try:
            rc = lib.yr_setown_as(caller.creds, copy, cmd, kind, pid, int(have))
            lib.yr_reply(self.sup.ctx, ev.id, 0 if rc < 0 else rc, -rc if rc < 0 else 0)
        finally:
            os.close(copy)


def _pids():
    for name in os.listdir("/proc"):
        if name.isdigit():
            yield int(name)


def _pgrp_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return int(fields[2])
    except (OSError, IndexError, ValueError):
        return None


def _target_of(fd: int) -> int | None:
    """The pid a pidfd (or a /proc/PID directory fd) of ours refers to;
    -1 for an exited pidfd's process; None when it is neither (or a /proc of
    another pid namespace, which we cannot judge: refused)."""
    pid = pidfd_target(fd)
    if pid is not None:
        return pid
    try:
        m = re.fullmatch(r"/proc/(\d+)", os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return None
    return int(m.group(1)) if m else None
