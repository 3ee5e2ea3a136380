"""The supervisor: spawns the program under the filter, serves notifications in
a thread (the receive loop is C, the decisions are the chain's), reaps the
tree as a child subreaper and returns the program's exit status."""
from __future__ import annotations

import errno
import os
import signal
import sys
import threading
import traceback

from . import filter as seccomp_filter
from . import modules as policy_modules
from . import procfs
from ._yama import ffi, lib
from .requests import (PTRACER_ANY, Caller, CreateInSticky, FollowLink, PathLink, PathSymlink,
                       PtraceAccess, PtraceTraceme, SetPtracer)

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
SI_KERNEL = 0x80
WAIT_KILLABLE_RECV = 1 << 5
NEW_LISTENER = 1 << 3

EXIT_SETUP = 125
EXIT_NOEXEC = 126
EXIT_NOTFOUND = 127


class SetupError(Exception):
    """yama-run itself could not start the program (exit 125)."""


def _int(value: int) -> int:
    """An int-typed syscall argument, as the kernel truncates it."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


class Supervisor:
    def __init__(self, chain, audit):
        self.chain = chain
        self.audit = audit
        self.ctx = ffi.NULL
        self.listener = -1
        self.main_pid = -1
        self._program = "?"
        self._handlers = {
            lib.YR_SYS_PTRACE: self._on_ptrace,
            lib.YR_SYS_PRCTL: self._on_prctl,
            lib.YR_SYS_PROCESS_VM_READV: self._on_process_vm,
            lib.YR_SYS_PROCESS_VM_WRITEV: self._on_process_vm,
            lib.YR_SYS_PIDFD_GETFD: self._on_pidfd_getfd,
            lib.YR_SYS_LINK: self._on_link,
            lib.YR_SYS_LINKAT: self._on_link,
        }
        for sys_id in range(lib.YR_SYS_OPEN, lib.YR_SYS_SYMLINKAT + 1):
            self._handlers[sys_id] = self._on_walk

    # -- start and lifetime --------------------------------------------------

    def run(self, argv: list[str], env: dict[str, str]) -> int:
        self._program = argv[0]
        for module in self.chain.modules:
            if hasattr(module, "enforcement"):
                self.audit.say(module.enforcement())
        hooks = self.chain.hooks()
        bpf = seccomp_filter.build(hooks)
        flags = NEW_LISTENER
        if bpf is not None and lib.yr_filter_flags_supported(NEW_LISTENER | WAIT_KILLABLE_RECV):
            flags |= WAIT_KILLABLE_RECV
        elif bpf is not None:
            self.audit.say("kernel lacks WAIT_KILLABLE_RECV: a signal may repeat a notified call")
        if lib.yr_set_subreaper() < 0:
            raise SetupError("cannot become a child subreaper")
        signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED + (signal.SIGCHLD,))
        pid, listener, status_fd = self._spawn(argv, env, bpf, flags)
        self.main_pid = pid
        server = None
        if bpf is not None:
            if listener < 0:
                self._exec_result(status_fd)          # raises with the child's reason
                raise SetupError("the child did not hand over the seccomp listener")
            self._start_serving(listener, hooks)
            server = threading.Thread(target=self._serve, name="yama-run-notify", daemon=True)
            server.start()
        failure = self._exec_result(status_fd)
        status = self._reap_all(pid)
        if server is not None:
            server.join()
            lib.yr_ctx_free(self.ctx)
            os.close(self.listener)
        if failure is not None:
            return failure
        return status

    def _spawn(self, argv, env, bpf, flags):
        keep = []

        def cstr(s: str):
            buf = ffi.new("char[]", os.fsencode(s))
            keep.append(buf)
            return buf

        c_argv = ffi.new("char *[]", [cstr(a) for a in argv] + [ffi.NULL])
        c_env = ffi.new("char *[]", [cstr(f"{k}={v}") for k, v in env.items()] + [ffi.NULL])
        path = env.get("PATH")
        c_path = cstr(path) if path is not None else ffi.NULL
        out = ffi.new("struct yr_spawn_result *")
        if bpf is not None:
            c_bpf = ffi.from_buffer(bpf)
            rc = lib.yr_spawn_path(cstr(argv[0]), c_argv, c_env, c_path, c_bpf,
                                   len(bpf) // 8, flags, out)
        else:
            rc = lib.yr_spawn_path(cstr(argv[0]), c_argv, c_env, c_path, ffi.NULL, 0, 0, out)
        if rc < 0:
            raise SetupError(f"cannot start {argv[0]}: {os.strerror(-rc)}")
        return out.pid, out.listener, out.status_fd

    def _exec_result(self, status_fd: int) -> int | None:
        """None when the program is running; else the exit status to give."""
        try:
            data = os.read(status_fd, 8)
        finally:
            os.close(status_fd)
        if not data:
            return None
        failure = ffi.new("struct yr_spawn_failure *")
        ffi.memmove(failure, data, min(len(data), ffi.sizeof(failure[0])))
        reason = os.strerror(failure.err)
        if failure.stage == lib.YR_STAGE_EXEC:
            print(f"yama-run: {self._program}: {reason}", file=sys.stderr)
            return EXIT_NOTFOUND if failure.err == errno.ENOENT else EXIT_NOEXEC
        if failure.stage == lib.YR_STAGE_FILTER:
            hint = (" (another user-notify supervisor, such as an outer yama-run, "
                    "already watches this process)" if failure.err == errno.EBUSY else "")
            raise SetupError(f"cannot install the seccomp filter: {reason}{hint}")
        raise SetupError(f"cannot set up the sandbox: {reason}")

    def _start_serving(self, listener: int, hooks) -> None:
        self.listener = listener
        self.ctx = lib.yr_ctx_new(listener)
        if self.ctx == ffi.NULL:
            raise SetupError("cannot allocate the notification context")
        for arch, nr, sys_id in seccomp_filter.syscall_table(hooks):
            lib.yr_ctx_map(self.ctx, arch, nr, sys_id)
        lib.yr_ctx_link_table(self.ctx, self.link_table())
        lib.yr_walk_setup(self.walk_table("follow_link", FollowLink, lib.YR_FL_COUNT),
                          self.walk_table("create_in_sticky", CreateInSticky, lib.YR_CF_COUNT),
                          (lib.YR_WALK_PROC_MEM if "ptrace_access_check" in hooks else 0)
                          | (lib.YR_WALK_PATH_SYMLINK if "path_symlink" in hooks else 0)
                          | (lib.YR_WALK_FOLLOW if "follow_link" in hooks else 0))
        if lib.yr_ctx_sync_wakeup(self.ctx) < 0:
            self.audit.say("kernel lacks SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: slower replies")

    def link_table(self) -> int:
        """The chain's path_link rule over the C side's facts (yr_link_table_allows).
        YAMA_RUN_NO_FAST_PATH=1 sends every undecided link to Python (for tests)."""
        if os.environ.get("YAMA_RUN_NO_FAST_PATH") == "1":
            return 0
        return policy_modules.rule_table(self.chain.modules, "path_link",
                                         PathLink.hypothetical, lib.YR_LF_COUNT)

    def walk_table(self, hook: str, request, bits: int) -> int:
        """A walk hook's rule over the C side's facts (all ones: nobody hooks it).
        YAMA_RUN_NO_FAST_PATH=1 sends every hook point to Python."""
        if not policy_modules.hooked(self.chain.modules, hook):
            return (1 << 64) - 1
        if os.environ.get("YAMA_RUN_NO_FAST_PATH") == "1":
            return 0
        return policy_modules.rule_table(self.chain.modules, hook, request.hypothetical, bits)

    def _reap_all(self, main_pid: int) -> int:
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

    # -- the notification loop -----------------------------------------------

    def _serve(self) -> None:
        ev = ffi.new("struct yr_event *")
        while True:
            rc = lib.yr_next(self.ctx, ev)
            if rc == 0:
                return
            if rc < 0:
                self._fail_closed(f"receiving notifications failed: {os.strerror(-rc)}")
                return
            try:
                self._handle(ev)
            except Exception:
                print(f"yama-run: internal error, call denied:\n{traceback.format_exc()}",
                      file=sys.stderr)
                lib.yr_reply(self.ctx, ev.id, 0, errno.EPERM)

    def _fail_closed(self, why: str) -> None:
        print(f"yama-run: {why}; killing the sandboxed program", file=sys.stderr)
        try:
            os.kill(self.main_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _handle(self, ev) -> None:
        caller = Caller(ev.tid, ev.tgid, ev.cap_effective)
        if lib.yr_walk_current().hook:          # a walk (maybe linkat's source) waits
            self._on_walk(ev, caller)
        else:
            self._handlers[ev.sys](ev, caller)

    def _deny_or_continue(self, ev, hook: str, request) -> None:
        deny = self.chain.walk(hook, request)
        if deny is not None:
            lib.yr_reply(self.ctx, ev.id, 0, deny.errno)
        elif lib.yr_id_valid(self.ctx, ev.id):
            lib.yr_reply_continue(self.ctx, ev.id)

    def _access(self, ev, caller, syscall: str, operation: str, target: int) -> None:
        """An ATTACH-mode access to target, decided on the integer pid."""
        target = procfs.caller_pid(caller.tid, target) if target > 0 else None
        target_tgid = procfs.tgid_of(target) if target else None
        if target_tgid is None:
            # The kernel would say ESRCH; saying it ourselves keeps a pid that
            # appears after our look-up from being reached unchecked.
            lib.yr_reply(self.ctx, ev.id, 0, errno.ESRCH)
            return
        if target_tgid == os.getpid():
            self.audit.say(f"refused {operation} of the supervisor by {caller.describe()}")
            lib.yr_reply(self.ctx, ev.id, 0, errno.EPERM)
            return
        request = PtraceAccess(caller, syscall, operation, target, target_tgid)
        self._deny_or_continue(ev, "ptrace_access_check", request)

    def _on_ptrace(self, ev, caller) -> None:
        op = ev.args[0]
        if op == seccomp_filter.PTRACE_TRACEME:
            parent = procfs.ppid_of(caller.tgid) or 0
            self._deny_or_continue(ev, "ptrace_traceme", PtraceTraceme(caller, parent))
        elif op in (seccomp_filter.PTRACE_ATTACH, seccomp_filter.PTRACE_SEIZE):
            name = "PTRACE_ATTACH" if op == seccomp_filter.PTRACE_ATTACH else "PTRACE_SEIZE"
            self._access(ev, caller, "ptrace", name, _int(ev.args[1]))
        else:   # not routed by our filter: fail closed
            lib.yr_reply(self.ctx, ev.id, 0, errno.EPERM)

    def _on_process_vm(self, ev, caller) -> None:
        name = ("process_vm_readv" if ev.sys == lib.YR_SYS_PROCESS_VM_READV
                else "process_vm_writev")
        self._access(ev, caller, name, name, _int(ev.args[0]))

    def _on_prctl(self, ev, caller) -> None:
        """PR_SET_PTRACER, emulated: this kernel has no Yama to answer it."""
        arg2 = ev.args[1]
        if arg2 == 0:
            tracer = None
        elif arg2 in (0xFFFFFFFFFFFFFFFF, 0xFFFFFFFF) or _int(arg2) == -1:
            tracer = PTRACER_ANY
        else:
            tracer = self._task(caller, _int(arg2))
            if tracer is None:
                lib.yr_reply(self.ctx, ev.id, 0, errno.EINVAL)   # no such pid
                return
        deny = self.chain.walk("task_prctl", SetPtracer(caller, tracer))
        lib.yr_reply(self.ctx, ev.id, 0, deny.errno if deny else 0)

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

    def _on_link(self, ev, caller) -> None:
        """C has read the paths once, captured the source and the new parent
        as the caller, and found no path error; the chain decides on those
        objects and C makes the link from them (yr_link_finish)."""
        op = lib.yr_ctx_link(self.ctx)
        request = PathLink(caller, op.facts,
                           source=os.fsdecode(ffi.string(op.old_path)),
                           new=os.fsdecode(ffi.string(op.new_path)),
                           owner=op.uid, mode=op.mode,
                           syscall="link" if ev.sys == lib.YR_SYS_LINK else "linkat")
        deny = self.chain.walk("path_link", request)
        lib.yr_link_finish(self.ctx, ev.id, deny.errno if deny is not None else 0)

    def _on_walk(self, ev, caller) -> None:
        """C has walked the path as the caller and stopped at a hook point
        (yr_walk_current says which, with the facts of the objects it holds);
        the chain decides, C goes on from the same objects (yr_walk_resume),
        possibly to the next hook point (the next hop of a chain of links)."""
        try:
            self._walk_hooks(ev, caller)
        finally:
            if lib.yr_walk_current().hook:      # an error on the way: fail closed
                lib.yr_walk_resume(self.ctx, ev.id, errno.EPERM)

    def _walk_hooks(self, ev, caller) -> None:
        w = lib.yr_walk_current()
        syscall = seccomp_filter.SYSCALL_NAMES.get(ev.sys, "?")
        while True:
            if w.hook == lib.YR_HOOK_PATH_LINK:   # linkat's source walked: the link itself
                w.hook = 0
                self._on_link(ev, caller)
                return
            path = os.fsdecode(ffi.string(w.path))
            if w.hook == lib.YR_HOOK_PROC_MEM:
                deny_errno = self._proc_mem(caller, syscall, w.mem_pid, path)
            else:
                if w.hook == lib.YR_HOOK_FOLLOW_LINK:
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
                deny = self.chain.walk(hook, request)
                deny_errno = deny.errno if deny is not None else 0
            if lib.yr_walk_resume(self.ctx, ev.id, deny_errno):
                return

    def _proc_mem(self, caller, syscall: str, target: int, path: str) -> int:
        """Opening another process's /proc/PID/mem: an ATTACH-mode access
        (proc_mem_open), EACCES when refused. target is in our pid namespace."""
        target_tgid = procfs.tgid_of(target)
        if target_tgid is None:
            return 0            # gone: the open through the held directory fails by itself
        if target_tgid == os.getpid():
            self.audit.say(f"refused opening the supervisor's memory by {caller.describe()}")
            return errno.EACCES
        request = PtraceAccess(caller, syscall, "open /proc/PID/mem", target, target_tgid,
                               deny_errno=errno.EACCES, path=path)
        deny = self.chain.walk("ptrace_access_check", request)
        return deny.errno if deny is not None else 0

    def _on_pidfd_getfd(self, ev, caller) -> None:
        """Emulated: the pidfd is an fd the caller's other threads could swap
        after our check, so we take the object once and act on that."""
        pidfd, target_fd, flags = _int(ev.args[0]), _int(ev.args[1]), ev.args[2] & 0xFFFFFFFF
        if flags:
            lib.yr_reply(self.ctx, ev.id, 0, errno.EINVAL)
            return
        copy = lib.yr_fetch_fd(caller.tgid, pidfd)
        if copy < 0:
            lib.yr_reply(self.ctx, ev.id, 0, errno.EBADF if -copy == errno.EBADF else -copy)
            return
        try:
            target = _pidfd_pid(copy)
            if target is None:
                lib.yr_reply(self.ctx, ev.id, 0, errno.EBADF)    # not a pidfd
                return
            target_tgid = procfs.tgid_of(target) if target > 0 else None
            if target_tgid is None:
                lib.yr_reply(self.ctx, ev.id, 0, errno.ESRCH)
                return
            if target_tgid == os.getpid():          # never the supervisor's fds
                lib.yr_reply(self.ctx, ev.id, 0, errno.EPERM)
                return
            if target_tgid != caller.tgid:   # own thread group: no LSM is asked
                request = PtraceAccess(caller, "pidfd_getfd", "pidfd_getfd", target, target_tgid)
                deny = self.chain.walk("ptrace_access_check", request)
                if deny is not None:
                    lib.yr_reply(self.ctx, ev.id, 0, deny.errno)
                    return
            fd = lib.yr_getfd_as(caller.creds, copy, target_fd)
            if fd < 0:
                lib.yr_reply(self.ctx, ev.id, 0, -fd)
                return
            try:
                lib.yr_reply_addfd(self.ctx, ev.id, fd, os.O_CLOEXEC)
            finally:
                os.close(fd)
        finally:
            os.close(copy)


def _pidfd_pid(fd: int) -> int | None:
    """The pid a pidfd of ours refers to (-1 once it has exited), None if fd is not a pidfd."""
    try:
        with open(f"/proc/self/fdinfo/{fd}", "rb") as f:
            for line in f:
                if line.startswith(b"Pid:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None
