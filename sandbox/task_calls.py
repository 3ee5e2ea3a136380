"""Calls that name another task: the ptrace family and prctl(PR_SET_PTRACER).

ptrace and process_vm_* name their target by an integer pid and are decided
on it, then continued; pidfd_getfd names it through a descriptor, which
another thread could swap after a check, so it is emulated; PR_SET_PTRACER is
emulated (this kernel has no Yama to answer it)."""
from __future__ import annotations

import errno
import os

from . import filter as seccomp_filter
from . import procfs
from ._yama import lib
from .requests import PTRACER_ANY, PtraceAccess, PtraceTraceme, SetPtracer
from .sysargs import int_arg, pidfd_target

PTRACE_O_MASK = 0x003000FF


class TaskCalls:
    def __init__(self, sup):
        self.sup = sup

    def handlers(self) -> dict:
        """syscall name -> handler (names from the registry, csrc/syscalls.def)."""
        return {"ptrace": self.on_ptrace, "prctl": self.on_prctl,
                "process_vm_readv": self.on_process_vm, "process_vm_writev": self.on_process_vm,
                "pidfd_getfd": self.on_pidfd_getfd}

    def _deny_or_continue(self, ev, hook: str, request) -> None:
        deny = self.sup.chain.walk(hook, request)
        if deny is not None:
            lib.yr_reply(self.sup.ctx, ev.id, 0, deny.errno)
        elif lib.yr_id_valid(self.sup.ctx, ev.id):
            lib.yr_reply_continue(self.sup.ctx, ev.id)

    def _access(self, ev, caller, syscall: str, operation: str, target: int) -> None:
        """An ATTACH-mode access to target, decided on the integer pid."""
        target = procfs.caller_pid(caller.tid, target) if target > 0 else None
        target_tgid = procfs.tgid_of(target) if target else None
        if target_tgid is None:
            # The kernel would say ESRCH; saying it ourselves keeps a pid that
            # appears after our look-up from being reached unchecked.
            lib.yr_reply(self.sup.ctx, ev.id, 0, errno.ESRCH)
            return
        if target_tgid in self.sup.protected_pids:
            self.sup.audit.say(f"refused {operation} of the supervisor by {caller.describe()}")
            lib.yr_reply(self.sup.ctx, ev.id, 0, errno.EPERM)
            return
        if target_tgid == caller.tgid:      # own thread group: the kernel decides alone
            if lib.yr_id_valid(self.sup.ctx, ev.id):
                lib.yr_reply_continue(self.sup.ctx, ev.id)
            return
        request = PtraceAccess(caller, syscall, operation, target, target_tgid)
        self._deny_or_continue(ev, "ptrace_access_check", request)

    def on_ptrace(self, ev, caller) -> None:
        op = ev.args[0]
        if op == seccomp_filter.PTRACE_TRACEME:
            parent = procfs.ppid_of(caller.tgid) or 0
            self._deny_or_continue(ev, "ptrace_traceme", PtraceTraceme(caller, parent))
        elif op == seccomp_filter.PTRACE_SEIZE and (ev.args[2] or ev.args[3] & ~PTRACE_O_MASK):
            # The kernel refuses these (ESRCH, else EIO) before any permission
            # check, on integers only: it may answer itself.
            if lib.yr_id_valid(self.sup.ctx, ev.id):
                lib.yr_reply_continue(self.sup.ctx, ev.id)
        elif op in (seccomp_filter.PTRACE_ATTACH, seccomp_filter.PTRACE_SEIZE):
            name = "PTRACE_ATTACH" if op == seccomp_filter.PTRACE_ATTACH else "PTRACE_SEIZE"
            self._access(ev, caller, "ptrace", name, int_arg(ev.args[1]))
        else:   # not routed by our filter: fail closed
            lib.yr_reply(self.sup.ctx, ev.id, 0, errno.EPERM)

    def on_process_vm(self, ev, caller) -> None:
        name = ("process_vm_readv" if ev.sys == lib.YR_SYS_PROCESS_VM_READV
                else "process_vm_writev")
        self._access(ev, caller, name, name, int_arg(ev.args[0]))

    def on_prctl(self, ev, caller) -> None:
        """PR_SET_PTRACER, emulated: this kernel has no Yama to answer it."""
        arg2 = ev.args[1]
        if arg2 == 0:
            tracer = None
        elif arg2 in (0xFFFFFFFFFFFFFFFF, 0xFFFFFFFF) or int_arg(arg2) == -1:
            tracer = PTRACER_ANY
        else:
            tracer = self._task(caller, int_arg(arg2))
            if tracer is None:
                lib.yr_reply(self.sup.ctx, ev.id, 0, errno.EINVAL)   # no such pid
                return
        request = SetPtracer(caller, tracer)
        deny = self.sup.chain.walk("task_prctl", request)
        if not deny:
            self.sup.audit.emulated(request)
        lib.yr_reply(self.sup.ctx, ev.id, 0, deny.errno if deny else 0)

    @staticmethod
    def _task(caller, pid: int):
        pid = procfs.caller_pid(caller.tid, pid) if pid > 0 else None
        if not pid:
            return None
        try:
            handle = procfs.TaskHandle(pid, 0, thread=True)
        except OSError:
            return None
        handle.tgid = procfs.tgid_of(pid) or pid
        return handle

    def on_pidfd_getfd(self, ev, caller) -> None:
        """Emulated: the pidfd is an fd the caller's other threads could swap
        after our check, so we take the object once and act on that."""
        pidfd, target_fd, flags = int_arg(ev.args[0]), int_arg(ev.args[1]), ev.args[2] & 0xFFFFFFFF
        if flags:
            lib.yr_reply(self.sup.ctx, ev.id, 0, errno.EINVAL)
            return
        copy = lib.yr_fetch_fd(caller.tgid, pidfd)
        if copy < 0:
            lib.yr_reply(self.sup.ctx, ev.id, 0, errno.EBADF if -copy == errno.EBADF else -copy)
            return
        try:
            target = pidfd_target(copy)
            if target is None:
                lib.yr_reply(self.sup.ctx, ev.id, 0, errno.EBADF)    # not a pidfd
                return
            target_tgid = procfs.tgid_of(target) if target > 0 else None
            if target_tgid is None:
                lib.yr_reply(self.sup.ctx, ev.id, 0, errno.ESRCH)
                return
            if target_tgid in self.sup.protected_pids:     # never yama-run's fds
                lib.yr_reply(self.sup.ctx, ev.id, 0, errno.EPERM)
                return
            if self.sup.shield.landlock and not procfs.is_descendant(os.getpid(), target):
                # Landlock would refuse the caller any process outside the
                # sandbox; we act outside its domain, so we refuse for it.
                lib.yr_reply(self.sup.ctx, ev.id, 0, errno.EPERM)
                return
            if target_tgid != caller.tgid:   # own thread group: no LSM is asked
                request = PtraceAccess(caller, "pidfd_getfd", "pidfd_getfd", target, target_tgid)
                deny = self.sup.chain.walk("ptrace_access_check", request)
                if deny is not None:
                    lib.yr_reply(self.sup.ctx, ev.id, 0, deny.errno)
                    return
            fd = lib.yr_getfd_as(caller.creds, copy, target_fd)
            if fd < 0:
                lib.yr_reply(self.sup.ctx, ev.id, 0, -fd)
                return
            try:
                lib.yr_reply_addfd(self.sup.ctx, ev.id, fd, os.O_CLOEXEC)
            finally:
                os.close(fd)
        finally:
            os.close(copy)
