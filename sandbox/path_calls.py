"""Path calls at a hook point: C (the path engine, csrc/walk.c and its parts)
has read the path once, walked it as the caller and holds the objects met;
the chain decides on their facts and C goes on from the same objects."""
from __future__ import annotations

import errno
import os

from . import routes
from ._yama import ffi, lib
from .chain import Deny
from .modules import contain
from .requests import (BinfmtWrite, Caller, CgroupWrite, CreateInSticky, FollowLink,
                       GateRefusal, PathLink, PathSymlink, PtraceAccess, UnreachableCaller)


class PathCalls:
    def __init__(self, sup):
        self.sup = sup

    def handlers(self) -> dict:
        """syscall name -> handler: every call the registry gives to C's
        link emulation or path walk comes here at a hook point."""
        return {name: self.on_walk for name, server in routes.SERVERS.items()
                if server in (lib.YR_SERVE_LINK, lib.YR_SERVE_WALK)}

    def waiting(self) -> bool:
        """Does a path call (a walk, or a link) wait for the chain's verdict?"""
        return bool(lib.yr_ctx_walk(self.sup.ctx).hook)

    def on_link(self, ev, caller) -> bool:
        """C has read the paths once, captured the source and the new parent
        as the caller, and found no path error; the chain decides on those
        objects and C makes the link from them (yr_link_finish). False: the
        source is a symlink, and its new name waits for path_symlink."""
        op = lib.yr_ctx_link(self.sup.ctx)
        request = PathLink(caller, op.facts,
                           source=os.fsdecode(ffi.string(op.old_path)),
                           new=os.fsdecode(ffi.string(op.new_path)),
                           owner=op.uid, mode=op.mode,
                           syscall="link" if ev.sys == lib.YR_SYS_LINK else "linkat")
        deny = self.sup.chain.walk("path_link", request)
        return bool(lib.yr_link_finish(self.sup.ctx, ev.id,
                                       deny.errno if deny is not None else 0))

    def on_walk(self, ev, caller) -> None:
        """C has walked the path as the caller and stopped at a hook point
        (yr_ctx_walk says which, with the facts of the objects it holds);
        the chain decides, C goes on from the same objects (yr_walk_resume),
        possibly to the next hook point (the next hop of a chain of links)."""
        try:
            self._walk_hooks(ev, caller)
        finally:
            if lib.yr_ctx_walk(self.sup.ctx).hook:     # an error on the way: fail closed
                lib.yr_walk_resume(self.sup.ctx, ev.id, errno.EPERM)

    def _walk_hooks(self, ev, caller) -> None:
        w = lib.yr_ctx_walk(self.sup.ctx)
        syscall = routes.SYSCALL_NAMES.get(ev.sys, "?")
        while True:
            if w.hook == lib.YR_HOOK_PATH_LINK:   # both paths walked: the link itself
                if self.on_link(ev, caller):
                    return
                continue
            path = os.fsdecode(ffi.string(w.path))
            if w.hook == lib.YR_HOOK_EXEC_PRIVILEGED:   # a notice; the exec goes on
                self.sup.exec_privileged(caller, path, w.facts, w.obj_uid, w.obj_mode)
                deny_errno = 0
            elif w.hook == lib.YR_HOOK_PROC_ACCESS:
                deny_errno = self._proc_access(caller, syscall, w, path)
            elif w.hook == lib.YR_HOOK_CGROUP_WRITE:
                deny_errno = self._cgroup_write(caller, syscall, w, path)
            else:
                if w.hook == lib.YR_HOOK_BINFMT_WRITE:
                    hook, request = "binfmt_write", BinfmtWrite(caller, path, syscall=syscall)
                elif w.hook == lib.YR_HOOK_FOLLOW_LINK:
                    hook, request = "follow_link", FollowLink(
                        caller, w.facts, path=path, link=os.fsdecode(ffi.string(w.name)),
                        target=os.fsdecode(ffi.string(w.target)), link_uid=w.obj_uid,
                        dir_uid=w.dir_uid, dir_mode=w.dir_mode, syscall=syscall)
                elif w.hook == lib.YR_HOOK_CREATE_IN_STICKY:
                    hook, request = "create_in_sticky", CreateInSticky(
                        caller, w.facts, path=path, name=os.fsdecode(ffi.string(w.name)),
                        file_uid=w.obj_uid, file_mode=w.obj_mode, dir_uid=w.dir_uid,
                        dir_mode=w.dir_mode, syscall=syscall)
                else:
                    hook, request = "path_symlink", PathSymlink(
                        caller, path, os.fsdecode(ffi.string(w.target)), w.dir_uid,
                        w.dir_mode, w.fsuid, syscall=syscall)
                deny = self.sup.chain.walk(hook, request)
                deny_errno = deny.errno if deny is not None else 0
            if lib.yr_walk_resume(self.sup.ctx, ev.id, deny_errno):
                return

    def _proc_access(self, caller, syscall: str, w, path: str) -> int:
        """Another process's /proc entry that the kernel checks in
        PTRACE_MODE_ATTACH (mem on open; stack, syscall, personality on
        read): the gate (csrc/gate.c) has applied the kernel's own rule for
        the caller and refused outsiders; Yama's part is the chain's. The
        task is named in our pid namespace."""
        entry = ffi.string(w.entry).decode()
        request = PtraceAccess(caller, syscall, f"open /proc/PID/{entry}", w.target_tid,
                               w.target_tgid, deny_errno=w.deny_errno, path=path)
        deny = self.sup.chain.walk("ptrace_access_check", request)
        return deny.errno if deny is not None else 0

    def _cgroup_write(self, caller, syscall: str, w, path: str) -> int:
        """A cgroup file opened for writing, with what the gate found of it
        (csrc/gate.c, YR_CG_*). yama-run's own processes first, in every
        mode, as the guard's (sandbox/guard.py): the cgroup of one of them or
        an ancestor's; then the chain (contained: the contain module refuses
        every cgroup write); then, in every mode, cgroup.procs and
        cgroup.threads (the pid written is not seen: it may be yama-run's)
        and a cgroup whose place could not be established (fail closed)."""
        request = CgroupWrite(caller, path, syscall=syscall)
        if w.facts & lib.YR_CG_YAMA:
            return self._refuse(request, "it would reach the supervisor")
        deny = self.sup.chain.walk("cgroup_write", request)
        if deny is not None:
            return deny.errno
        if w.facts & lib.YR_CG_MOVES:
            return self._refuse(request, "it would reach the supervisor "
                                         "(the pid written may be one of yama-run's)")
        if w.facts & lib.YR_CG_UNKNOWN:
            return self._refuse(request, "it would reach the supervisor "
                                         "(where this cgroup lies cannot be established)")
        return 0

    def gate_refused(self, caller) -> bool:
        """The gate's own refusal on this receiver (csrc/gate.c,
        yr_ctx_gate_refusal), recorded as a module's denial is (the "gate"),
        once. True: the call it was made in is answered already."""
        ctx = self.sup.ctx
        refusal = lib.yr_ctx_gate_refusal(ctx)
        if not refusal.pending:
            return False
        try:
            self._record_refusal(caller, refusal)
        finally:
            # the program's exit status waits for this (sandbox/lifetime.py)
            lib.yr_gate_refusal_recorded(ctx)
        return bool(refusal.answered)

    def _record_refusal(self, caller, refusal) -> None:
        if refusal.tid != caller.tid:           # made while C went on after a verdict
            caller = Caller(refusal.tid, refusal.tgid, 0)
        if refusal.comm[0]:
            caller.comm = ffi.string(refusal.comm).decode(errors="replace")
        syscall = routes.SYSCALL_NAMES.get(refusal.sys, "?")
        path = os.fsdecode(ffi.string(refusal.path))
        if refusal.target_tgid > 0:
            self._outside_refused(caller, syscall, path, refusal)
            return
        if refusal.unreachable:
            request = UnreachableCaller(caller, syscall=syscall)
            deny = Deny(errno.EPERM, request.REASON)
        else:
            request = GateRefusal(caller, path, syscall=syscall)
            deny = Deny(errno.EACCES, ffi.string(refusal.reason).decode())
        self.sup.audit.denial("gate", request.hook, request, deny, permissive=False)

    def _outside_refused(self, caller, syscall: str, path: str, refusal) -> None:
        """Contained: the gate refused an entry of a process outside (what
        the kernel checks against it: a magic link followed, an entry read,
        listed or written), recorded as the contain module's denial, under
        the ptrace hook the kernel would ask."""
        hook = "ptrace_access_check" if refusal.attach else "ptrace_read_access"
        request = PtraceAccess(caller, syscall, ffi.string(refusal.operation).decode(),
                               refusal.target_tid, refusal.target_tgid,
                               deny_errno=errno.EACCES, path=path)
        self.sup.audit.denial("contain", hook, request, Deny(errno.EACCES, contain.REASON),
                              permissive=False)

    def _refuse(self, request, why: str) -> int:
        self.sup.audit.say(f"refused {request.describe()} by {request.caller.describe()}: {why}")
        return errno.EACCES
