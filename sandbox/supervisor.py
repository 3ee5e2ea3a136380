"""The supervisor: spawns the program under the filter, serves notifications in
receiver threads (the receive loop is C, the decisions are the chain's), reaps
the tree as a child subreaper and returns the program's exit status.

Receivers: YR_RECEIVERS_BASE threads, each with a notification context of its
own, take notifications from the one listener; a watchdog thread starts
another whenever one stays busy on a call (a read of the caller's memory that
faults into userfaultfd, a walk on a FUSE mount whose daemon never answers):
csrc/pool.c, docs/stall.md.

It runs in the process that yama-run's front forked (sandbox/lifetime.py):
the main program's status goes to the front as soon as it is known, and the
supervisor serves what is left of the tree after that, detached."""
from __future__ import annotations

import errno
import os
import signal
import threading
import time
import traceback

from . import filter as seccomp_filter
from . import lifetime
from . import modules as policy_modules
from . import shield as shields
from .audit import QuietStream, printable
from ._yama import ffi, lib
from .guard import Guard
from .lifetime import EXIT_NOEXEC, EXIT_NOTFOUND, FORWARDED
from .path_calls import PathCalls
from .requests import Caller, CreateInSticky, FollowLink, PathLink
from .task_calls import TaskCalls

WAIT_KILLABLE_RECV = 1 << 5
NEW_LISTENER = 1 << 3


class SetupError(Exception):
    """yama-run itself could not start the program (exit 125)."""


class ListenerUnavailable(SetupError):
    """The kernel refused a user-notify listener (EBUSY: another one watches)."""




BACKENDS = ("auto", "notify", "ptrace")
USERNS = ("auto", "never")
CAP_SYS_PTRACE = 19


class Supervisor:
    def __init__(self, chain, audit, backend: str = "auto", link=None, userns: str = "auto"):
        self.chain = chain
        self.audit = audit
        self.backend = backend
        self.link = link                    # to the front (lifetime.Link), if any
        if link is not None:
            link.before_report = audit.flush
        self._ctx = ffi.NULL                # the context of a lone server (the tracer)
        self._local = threading.local()     # a receiver's own context (ctx)
        self.pool = ffi.NULL
        self._template = ffi.NULL           # the tables every receiver's context copies
        self._receivers: list[threading.Thread] = []
        self._receivers_lock = threading.Lock()
        self._failed = False                # the listener is given up (_fail_closed)
        self.listener = -1
        self.main_pid = -1
        self._program = "?"
        # yama-run's own processes (this supervisor and the front the shell
        # waits on): out of the program's reach in every mode, the one place
        # every check reads them from.
        self.protected_pids = {os.getpid()} | ({link.front} if link is not None else set())
        self.shield = shields.Shield(chain)
        self.userns = self._want_userns(userns)
        # The program shares our stderr: if its reader goes away, a message
        # must not take the notification loop down with it.
        self.audit.stream = QuietStream(self.audit.stream)
        self.paths = PathCalls(self)
        servers = [TaskCalls(self), self.paths, Guard(self)]
        # logical id -> handler, by the registry's names (csrc/syscalls.def)
        self._handlers = {seccomp_filter.SYSCALL_IDS[name]: handler
                          for server in servers for name, handler in server.handlers().items()}

    @property
    def ctx(self):
        """The notification context of the calling thread: a receiver's own,
        else the lone one (the ptrace backend's tracer)."""
        return getattr(self._local, "ctx", self._ctx)

    @ctx.setter
    def ctx(self, value) -> None:
        self._ctx = value

    # -- start and lifetime --------------------------------------------------

    def _want_userns(self, choice: str) -> bool:
        """A user namespace of ours around the program, when we lack
        CAP_SYS_PTRACE: without it we could not read the memory or the
        /proc/PID/{cwd,root,fd} of a non-dumpable caller (docs/everyday.md)."""
        if has_cap_sys_ptrace():
            return False
        if choice == "never":
            self.audit.say("no user namespace (--userns=never): the calls of non-dumpable "
                           "programs cannot be served and fail with EPERM")
            return False
        err = lib.yr_userns_probe()
        if err:
            self.audit.say(f"no user namespace ({os.strerror(err)}): the calls of "
                           "non-dumpable programs cannot be served and fail with EPERM")
            return False
        return True

    def run(self, argv: list[str], env: dict[str, str]) -> int:
        """With the backend asked for; auto: notify, else ptrace where the
        kernel lacks user-notify or refuses a listener (EBUSY)."""
        if not self.hooks() or self.backend == "notify":
            return self._run_notify(argv, env)
        if self.backend == "ptrace":
            return self._run_traced(argv, env)
        if not kernel_at_least(5, 9):           # ADDFD; EBUSY is found by trying
            return self._run_traced(argv, env, "this kernel lacks seccomp user-notify "
                                    "with ADDFD (Linux 5.9)")
        try:
            return self._run_notify(argv, env)
        except ListenerUnavailable as exc:
            os.waitpid(self.main_pid, 0)        # the child that could not install it
            return self._run_traced(argv, env, str(exc))

    def _run_traced(self, argv, env, why: str | None = None) -> int:
        try:
            from . import backend_ptrace
        except ImportError:
            hint = "the ptrace backend needs python-ptrace: pip install 'yama-run[ptrace]'"
            raise SetupError(f"{why}; {hint}" if why else hint) from None
        if why:
            self.audit.say(f"{why}: falling back to the ptrace backend")
        self._program = argv[0]
        bpf = seccomp_filter.build(self.hooks(), self.shield.landlock, seccomp_filter.TRACED)
        return backend_ptrace.run(self, argv, env, bpf)

    def _run_notify(self, argv: list[str], env: dict[str, str]) -> int:
        self._program = argv[0]
        for module in self.chain.modules:
            if hasattr(module, "enforcement"):
                self.audit.say(module.enforcement())
        hooks = self.hooks()
        bpf = seccomp_filter.build(hooks, self.shield.landlock)
        flags = NEW_LISTENER
        if bpf is not None and lib.yr_filter_flags_supported(NEW_LISTENER | WAIT_KILLABLE_RECV):
            flags |= WAIT_KILLABLE_RECV
        elif bpf is not None:
            self.audit.say("kernel lacks WAIT_KILLABLE_RECV: a signal may repeat a notified call")
        if lib.yr_set_subreaper() < 0:
            raise SetupError("cannot become a child subreaper")
        signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED + (signal.SIGCHLD,))
        pid, listener, status_fd = self._spawn(argv, env, bpf, flags)
        self.started(pid)
        if bpf is not None:
            self.shield.harden_supervisor()
            self.audit.say(self.shield.describe())
        watchdog = None
        if bpf is not None:
            if listener < 0:
                self._exec_result(status_fd)          # raises with the child's reason
                raise SetupError("the child did not hand over the seccomp listener")
            self.audit.say("backend: notify")
            self._start_serving(listener, hooks)
            self._add_receiver()
            watchdog = threading.Thread(target=self._watch, name="yama-run-watchdog",
                                        daemon=True)
            watchdog.start()
        failure = self._exec_result(status_fd)
        status = lifetime.reap_all(pid, self.link)
        if watchdog is not None:
            self._stop_serving(watchdog)
        if failure is not None:
            return failure
        return status

    def hooks(self) -> set[str]:
        """The chain's hook points, and the supervisor's own notice of
        privileged execs whenever a filter is installed at all."""
        hooks = self.chain.hooks()
        return hooks | {"exec_notice"} if hooks else hooks

    def exec_privileged(self, caller, path: str, bits: int, uid: int, mode: int) -> None:
        """A setuid, setgid or file-capability program is executed: it runs
        without that privilege (no_new_privs). Said with -v, kept in the audit
        log and the journal (docs/everyday.md says why and what to do)."""
        what = [name for bit, name in ((lib.YR_EXEC_SETUID, f"setuid {uid}"),
                                       (lib.YR_EXEC_SETGID, "setgid"),
                                       (lib.YR_EXEC_FCAPS, "file capabilities")) if bits & bit]
        self.audit.notice("exec-unprivileged",
                          f"{path} ({', '.join(what)}) runs without its privilege under "
                          f"yama-run (no_new_privs), executed by {caller.describe()}",
                          path=path, privilege=what, pid=caller.tgid, tid=caller.tid,
                          mode=oct(mode))

    def started(self, pid: int) -> None:
        """The program runs: the front may signal it; -v says how it runs."""
        if self.link is not None:
            self.link.started(pid)
        if self.userns:
            self.audit.say(f"in a user namespace owned by uid {os.geteuid()}: the program keeps "
                           "its ids, others' show as 65534 (docs/everyday.md)")

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
            if self.userns:
                flags |= lib.YR_SPAWN_USERNS
            c_bpf = ffi.from_buffer(bpf)
            rc = lib.yr_spawn_path(cstr(argv[0]), c_argv, c_env, c_path, c_bpf,
                                   len(bpf) // 8, flags, int(self.shield.landlock), out)
        else:
            rc = lib.yr_spawn_path(cstr(argv[0]), c_argv, c_env, c_path, ffi.NULL, 0, 0, 0, out)
        if rc < 0:
            raise SetupError(f"cannot start {argv[0]}: {os.strerror(-rc)}")
        self.main_pid = out.pid
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
            print(f"yama-run: {printable(self._program)}: {reason}", file=self.audit.stream)
            return EXIT_NOTFOUND if failure.err == errno.ENOENT else EXIT_NOEXEC
        if failure.stage == lib.YR_STAGE_FILTER:
            hint = (" (another user-notify supervisor, such as an outer yama-run, "
                    "already watches this process)" if failure.err == errno.EBUSY else "")
            error = ListenerUnavailable if failure.err == errno.EBUSY else SetupError
            raise error(f"cannot install the seccomp filter: {reason}{hint}")
        if failure.stage == lib.YR_STAGE_USERNS:
            raise SetupError(f"cannot make the sandbox's user namespace: {reason} "
                             "(--userns=never runs without one)")
        if failure.stage == lib.YR_STAGE_SHIELD:
            raise SetupError(f"cannot enter the Landlock domain that shields the supervisor: "
                             f"{reason}")
        raise SetupError(f"cannot set up the sandbox: {reason}")

    def _start_serving(self, listener: int, hooks) -> None:
        self.listener = listener
        self._template = lib.yr_ctx_new(listener)
        self.pool = lib.yr_pool_new()
        if self._template == ffi.NULL or self.pool == ffi.NULL:
            raise SetupError("cannot allocate the notification context")
        self.load_tables(self._template, hooks)
        if lib.yr_ctx_sync_wakeup(self._template) < 0:
            self.audit.say("kernel lacks SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: slower replies")

    def _add_receiver(self) -> bool:
        """One more receiver thread, with a context of its own."""
        ctx = lib.yr_ctx_clone(self._template)
        if ctx == ffi.NULL or lib.yr_pool_join(self.pool, ctx) < 0:
            lib.yr_ctx_free(ctx)
            return False
        thread = threading.Thread(target=self._serve, args=(ctx,), name="yama-run-notify",
                                  daemon=True)
        with self._receivers_lock:
            self._receivers = [t for t in self._receivers if t.is_alive()] + [thread]
        try:
            thread.start()
        except RuntimeError:                  # no thread to be had: the pool forgets it
            lib.yr_ctx_free(ctx)
            return False
        return True

    def _watch(self) -> None:
        """The watchdog (csrc/pool.c yr_pool_watch): another receiver
        whenever one is stalled on a call, up to the pool's bound."""
        try:
            while lib.yr_pool_watch(self.pool) > 0:
                if not self._add_receiver():
                    self.audit.internal_error("cannot start another receiver",
                                              "cannot start another receiver")
                    time.sleep(0.1)
        except BaseException:
            self.audit.internal_error("the receivers' watchdog failed", traceback.format_exc(),
                                      always=True)

    def _stop_serving(self, watchdog: threading.Thread) -> None:
        """The tree is gone: every receiver finds no caller left and ends
        (a stalled one once its caller is gone too)."""
        while True:
            with self._receivers_lock:
                alive = [t for t in self._receivers if t.is_alive()]
            if not alive:
                break
            for thread in alive:
                thread.join()
        lib.yr_pool_close(self.pool)
        watchdog.join()
        lib.yr_ctx_free(self._template)
        lib.yr_pool_free(self.pool)
        self._template = self.pool = ffi.NULL
        os.close(self.listener)

    def load_tables(self, ctx, hooks) -> None:
        """What C settles alone, for either backend: the routed syscalls and
        the chain's tabulated rules."""
        for arch, nr, sys_id in seccomp_filter.syscall_table(hooks, self.shield.landlock):
            lib.yr_ctx_map(ctx, arch, nr, sys_id)
        lib.yr_ctx_link_table(ctx, self.link_table())
        for pid in self.protected_pids:          # their /proc entries out of the sandbox's reach
            if pid != os.getpid() and lib.yr_gate_protect(pid) < 0:
                raise SetupError("too many yama-run processes to protect")
        lib.yr_walk_setup(self.walk_table("follow_link", FollowLink, lib.YR_FL_COUNT),
                          self.walk_table("create_in_sticky", CreateInSticky, lib.YR_CF_COUNT),
                          (lib.YR_WALK_PROC_MEM if "ptrace_access_check" in hooks else 0)
                          | (lib.YR_WALK_PATH_SYMLINK if "path_symlink" in hooks else 0)
                          | (lib.YR_WALK_FOLLOW if "follow_link" in hooks else 0)
                          | (lib.YR_WALK_LANDLOCK if self.shield.contained
                             and not self.shield.permissive else 0)
                          | (lib.YR_WALK_EXEC_NOTICE if "exec_notice" in hooks else 0))

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

    # -- the notification loop -----------------------------------------------

    def _serve(self, ctx) -> None:
        """One receiver, on its own context until it retires or no caller
        is left."""
        self._local.ctx = ctx
        try:
            self._serve_loop()
        except BaseException:                      # never leave callers waiting
            self._fail_closed("the notification loop failed", traceback.format_exc())
        finally:
            lib.yr_ctx_free(ctx)

    def _serve_loop(self) -> None:
        ev = ffi.new("struct yr_event *")
        while True:
            rc = lib.yr_next(self.ctx, ev)
            if rc == 0 or rc == lib.YR_NEXT_RETIRE:
                return
            if rc < 0:
                self._fail_closed(f"receiving notifications failed: {os.strerror(-rc)}")
                return
            try:
                self._handle(ev)
            except Exception:
                self.call_failed(ev, traceback.format_exc())
                lib.yr_reply(self.ctx, ev.id, 0, errno.EPERM)

    def call_failed(self, ev, trace: str) -> None:
        """Our code failed on a call, which is denied (EPERM): said with -v,
        the traceback in the audit log and the journal."""
        syscall = seccomp_filter.SYSCALL_NAMES.get(ev.sys, str(ev.nr))
        self.audit.internal_error(f"serving {syscall} of {ev.tid} (denied)", trace,
                                  syscall=syscall, pid=ev.tgid, tid=ev.tid)

    def _fail_closed(self, why: str, trace: str = "") -> None:
        """Nobody will answer any more: kill the program, and drop the listener
        so that its descendants' hooked calls fail (ENOSYS) instead of waiting."""
        with self._receivers_lock:              # once, whichever receiver finds it first
            failed, self._failed = self._failed, True
        if failed:
            return
        self.audit.internal_error(f"{why}; killing the sandboxed program", trace or why,
                                  always=True)
        try:
            os.kill(self.main_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        os.dup2(null, self.listener, inheritable=False)   # the number stays ours to close
        os.close(null)

    def _handle(self, ev) -> None:
        caller = Caller(ev.tid, ev.tgid, ev.cap_effective)
        if self.paths.waiting():                # a walk (maybe linkat's source) waits
            self.paths.on_walk(ev, caller)
        else:
            self._handlers[ev.sys](ev, caller)


def has_cap_sys_ptrace() -> bool:
    """Do we hold CAP_SYS_PTRACE (over the processes of our user namespace)?"""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> CAP_SYS_PTRACE & 1)
    except (OSError, ValueError):
        pass
    return False


def kernel_at_least(major: int, minor: int) -> bool:
    """Is the running kernel this version or newer? (Unparsable: yes.)"""
    release = os.uname().release.split("-")[0].split(".")
    try:
        return (int(release[0]), int(release[1])) >= (major, minor)
    except (IndexError, ValueError):
        return True
