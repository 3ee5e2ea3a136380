"""The supervisor: spawns the program under the filter, serves notifications in
a thread (the receive loop is C, the decisions are the chain's), reaps the
tree as a child subreaper and returns the program's exit status.

It runs in the process that yama-run's front forked (sandbox/lifetime.py):
the main program's status goes to the front as soon as it is known, and the
supervisor serves what is left of the tree after that, detached."""
from __future__ import annotations

import errno
import os
import signal
import threading
import traceback

from . import control
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
    def __init__(self, chain, audit, backend: str = "auto", link=None, userns: str = "auto",
                 profile=None, ready: bool = False):
        self.chain = chain                  # replaced whole by a live change (apply_chain)
        self.audit = audit
        self.backend = backend
        self.served_by = "none"             # the backend in use, once one is
        self.profile = profile              # what the chain was made from, if known
        self.ready = ready                  # --ready-to-tighten: route what any setting needs
        self._routed: set[str] | None = None
        # Held while C's rule tables are loaded or the context freed: a live
        # change (control thread) never loads them into a freed context.
        self.rules_lock = threading.Lock()
        self.control = control.ControlServer(self)
        self.link = link                    # to the front (lifetime.Link), if any
        if link is not None:
            link.before_report = audit.flush
        self.ctx = ffi.NULL
        self.listener = -1
        self.main_pid = -1
        self.argv: list[str] = []
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
        task_calls = TaskCalls(self)
        if "task_free" in self.hooks():     # routed for a later scope 1: relations kept exact
            task_calls.tasks.watch_execs()
        servers = [task_calls, self.paths, Guard(self)]
        # logical id -> handler, by the registry's names (csrc/syscalls.def)
        self._handlers = {seccomp_filter.SYSCALL_IDS[name]: handler
                          for server in servers for name, handler in server.handlers().items()}

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
        kernel lacks user-notify or refuses a listener (EBUSY). The control
        socket is served from the start to the end of the tree."""
        self.argv = list(argv)
        try:
            return self._run_backend(argv, env)
        finally:
            self.stop_control()

    def _run_backend(self, argv: list[str], env: dict[str, str]) -> int:
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
        self.served_by = "ptrace"
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
        server = None
        if bpf is not None:
            if listener < 0:
                self._exec_result(status_fd)          # raises with the child's reason
                raise SetupError("the child did not hand over the seccomp listener")
            self.audit.say("backend: notify")
            self.served_by = "notify"
            self._start_serving(listener, hooks)
            server = threading.Thread(target=self._serve, name="yama-run-notify", daemon=True)
            server.start()
        failure = self._exec_result(status_fd)
        status = lifetime.reap_all(pid, self.link)
        if server is not None:
            server.join()
            self.stop_control()
            lib.yr_ctx_free(self.ctx)
            self.ctx = ffi.NULL
            os.close(self.listener)
        if failure is not None:
            return failure
        return status

    def hooks(self) -> set[str]:
        """What the filter routes, fixed before the spawn: the chain's hook
        points, what tightening a setting live needs where that is cheap
        (all of it with --ready-to-tighten: sandbox/control.py), and the
        supervisor's own notice of privileged execs whenever a filter is
        installed at all."""
        if self._routed is None:
            self._routed = control.routed_hooks(self.chain, self.shield.landlock, self.ready)
        return self._routed

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
        """The program runs: the front may signal it; -v says how it runs;
        the control socket answers (sandbox/control.py)."""
        if self.link is not None:
            self.link.started(pid)
        self.control.start(pid)
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
        self.ctx = lib.yr_ctx_new(listener)
        if self.ctx == ffi.NULL:
            raise SetupError("cannot allocate the notification context")
        self.load_tables(self.ctx, hooks)
        if lib.yr_ctx_sync_wakeup(self.ctx) < 0:
            self.audit.say("kernel lacks SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: slower replies")

    def load_tables(self, ctx, hooks) -> None:
        """What C settles alone, for either backend: the routed syscalls
        (fixed) and the chain's rules (load_rules)."""
        for arch, nr, sys_id in seccomp_filter.syscall_table(hooks, self.shield.landlock):
            lib.yr_ctx_map(ctx, arch, nr, sys_id)
        for pid in self.protected_pids:          # their /proc entries out of the sandbox's reach
            if pid != os.getpid() and lib.yr_gate_protect(pid) < 0:
                raise SetupError("too many yama-run processes to protect")
        with self.rules_lock:
            self.load_rules(ctx)

    def load_rules(self, ctx) -> None:
        """The one place C's rules are set from the chain in force: its
        tabulated rules and the walk's switches. At start, and again after
        every live change (apply_chain), rules_lock held. Each is one aligned
        word that C reads once at the point it decides: a call already past
        that point keeps the old answer, the next call reads the new one."""
        hooks = self.chain.hooks()
        lib.yr_ctx_link_table(ctx, self.link_table())
        lib.yr_walk_setup(self.walk_table("follow_link", FollowLink, lib.YR_FL_COUNT),
                          self.walk_table("create_in_sticky", CreateInSticky, lib.YR_CF_COUNT),
                          (lib.YR_WALK_PROC_MEM if "ptrace_access_check" in hooks else 0)
                          | (lib.YR_WALK_PATH_SYMLINK if "path_symlink" in hooks else 0)
                          | (lib.YR_WALK_FOLLOW if "follow_link" in hooks else 0)
                          | (lib.YR_WALK_LANDLOCK if self.shield.contained
                             and not self.shield.permissive else 0)
                          | (lib.YR_WALK_EXEC_NOTICE if "exec_notice" in self.hooks() else 0))

    def apply_chain(self, chain) -> None:
        """Put a new chain in force (a live change; rules_lock held): Python's
        side in one assignment, which every handler reads per call (a walk
        under way finishes with the chain it started with), then C's rules.
        Containment turned on here works by the hooks alone: no Landlock
        domain can be added to a running program."""
        self.chain = chain
        self.shield.contained = any(getattr(m, "contained", False) for m in chain.modules)
        if self.ctx != ffi.NULL:
            self.load_rules(self.ctx)

    def stop_control(self) -> None:
        """No live change after this (before the context is freed); the
        control socket is removed."""
        with self.rules_lock:
            self.control.stop()

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

    def _serve(self) -> None:
        try:
            self._serve_loop()
        except BaseException:                      # never leave callers waiting
            self._fail_closed("the notification loop failed", traceback.format_exc())

    def _serve_loop(self) -> None:
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
