"""The supervisor: spawns the program under the filter, serves notifications in
receiver threads (the receive loop is C, the decisions are the chain's), reaps
the tree as a child subreaper and returns the program's exit status.

Receivers: YR_RECEIVERS_BASE threads, each with a notification context of its
own, take notifications from the one listener, one at a time while the other
is parked (called in while a receiver installs a descriptor or waits for
Python's decision); a watchdog thread starts
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

from . import control
from . import routes
from . import lifetime
from . import modules as policy_modules
from . import plan as plans
from . import shield as shields
from . import spawn
from .audit import QuietStream
from ._yama import ffi, lib
from .guard import Guard
from .path_calls import PathCalls
from .requests import Caller, CreateInSticky, FollowLink, PathLink
from .spawn import ListenerUnavailable, SetupError  # noqa: F401
from .task_calls import TaskCalls

BACKENDS = ("auto", "notify", "ptrace")
USERNS = ("auto", "never")


class Supervisor:
    def __init__(self, chain, audit, backend: str = "auto", link=None, userns: str = "auto",
                 profile=None, ready: bool = False, plan: dict | None = None):
        self.chain = chain                  # replaced whole by a live change (apply_chain)
        self.plan = plan                    # routing and tables (sandbox/plan.py); made if None
        self.audit = audit
        self.backend = backend
        self.served_by = "none"             # the backend in use, once one is
        self.profile = profile              # what the chain was made from, if known
        self.ready = ready                  # --ready-to-tighten: route what any setting needs
        # Held while C's rule tables are loaded or the context freed: a live
        # change (control thread) never loads them into a freed context.
        self.rules_lock = threading.Lock()
        self.control = control.ControlServer(self)
        self.link = link                    # to the front (lifetime.Link), if any
        audit.write_aside()                 # the program may hold stderr: never wait on it
        if link is not None:
            link.report_after(self._before_status)
        self._ctx = ffi.NULL                # the context of a lone server (the tracer)
        self._local = threading.local()     # a receiver's own context (ctx)
        self.pool = ffi.NULL
        self._template = ffi.NULL           # the tables every receiver's context copies
        self._receivers: list[threading.Thread] = []
        self._receivers_lock = threading.Lock()
        self._watchdog: threading.Thread | None = None
        self._failed = False                # the listener is given up (_fail_closed)
        self.listener = -1
        self.main_pid = -1
        self.argv: list[str] = []
        self._program = "?"
        # yama-run's own processes (this supervisor and the front the shell
        # waits on): out of the program's reach in every mode, declared once
        # (to C too, which pins each: csrc/gate.c); protected_pids reads the
        # live ones.
        self.declared_pids = {os.getpid()} | ({link.front} if link is not None else set())
        self.shield = shields.Shield(chain)
        self.userns_choice = userns
        self.userns, self._no_userns_why = spawn.userns_plan(userns)
        # The program shares our stderr: if its reader goes away, a message
        # must not take the notification loop down with it.
        self.audit.stream = QuietStream(self.audit.stream)
        self.paths = PathCalls(self)
        task_calls = TaskCalls(self)
        if "task_free" in self.hooks():     # routed for a later scope 1: relations kept exact
            task_calls.tasks.watch_execs()
        servers = [task_calls, self.paths, Guard(self)]
        # logical id -> handler, by the registry's names (csrc/syscalls.def)
        self._handlers = {routes.SYSCALL_IDS[name]: handler
                          for server in servers for name, handler in server.handlers().items()}

    @property
    def protected_pids(self) -> set[int]:
        """yama-run's processes alive now. The front ends with the main
        program (unless --wait) while the supervisor serves what it left
        behind: its number, free then, may be taken by any process, which
        was refused as the front's (a review: its own child's signals EPERM)."""
        return {pid for pid in self.declared_pids if self.is_protected(pid)}

    def is_protected(self, tgid: int) -> bool:
        """Is tgid one of yama-run's processes, alive? C's answer: each is
        pinned by a pidfd when declared, before the program runs (not reaped:
        its number is not free yet). Not a pidfd taken here: on the cached
        launch path this object is made once the program runs, maybe after
        the front ended (its pidfd_open failed, and the sandbox with it)."""
        return bool(lib.yr_gate_is_protected(tgid))

    @property
    def ctx(self):
        """The notification context of the calling thread: a receiver's own,
        else the lone one (the ptrace backend's tracer)."""
        return getattr(self._local, "ctx", self._ctx)

    @ctx.setter
    def ctx(self, value) -> None:
        self._ctx = value

    # -- start and lifetime --------------------------------------------------

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
        except ListenerUnavailable as exc:      # (its child reaped by spawn.start)
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
        from . import filter as seccomp_filter    # pyseccomp: here only (sandbox/routes.py)
        bpf = seccomp_filter.build(self.hooks(), self.shield.kernel, routes.TRACED)
        return backend_ptrace.run(self, argv, env, bpf)

    def routing(self) -> dict:
        """The plan's routing and tables (compiled now if none was given)."""
        if self.plan is None:
            self.plan = plans.routing(self.chain, self.ready)
        return self.plan

    def _run_notify(self, argv: list[str], env: dict[str, str]) -> int:
        self._program = argv[0]
        started = spawn.start(self.routing(), argv, env, self.userns_choice, self.audit.say,
                              protect=self.declared_pids)
        self.attach(started)
        if started.ctx != ffi.NULL:
            self._add_receiver(started.ctx)
        status = lifetime.reap_all(started.pid, self.link, started.status_fd,
                                   spawn.settle_exec(self._program))
        self.release()
        return status

    def attach(self, started, announced: bool = False) -> None:
        """The program runs (sandbox/spawn.py); announced: the front was told
        and -v said how it runs, before this supervisor was loaded. Both launch
        paths come here, the cold one (_run_notify) and the cached one
        (sandbox/launch.py, which never calls run): whatever must start beside
        the notification loop once the program runs belongs here (the
        receivers' watchdog, the control socket)."""
        if not announced:
            spawn.announce(started, self.link, self.routing(), self.audit.say)
        self.main_pid = started.pid
        self.userns = started.userns
        self.shield.nondumpable = started.nondumpable
        self.listener = started.listener
        self._template, self.pool = started.template, started.pool
        if self.pool != ffi.NULL:
            self.served_by = "notify"
            self._watchdog = threading.Thread(target=self._watch, name="yama-run-watchdog",
                                              daemon=True)
            self._watchdog.start()
        self.control.start(started.pid)

    def release(self) -> None:
        """After the last caller: the control socket (no live change after
        this), then every receiver (a stalled one once its caller is gone
        too), the watchdog, the contexts and the listener. The cached launch
        path's first receiver has ended before (sandbox/launch.py)."""
        self.stop_control()
        if self.pool == ffi.NULL:
            return
        # Closed first: the watchdog starts no receiver after the last one
        # was joined (yr_pool_join refuses), and a parked one leaves.
        lib.yr_pool_close(self.pool)
        self._watchdog.join()
        while True:
            with self._receivers_lock:
                alive = [t for t in self._receivers if t.is_alive()]
            if not alive:
                break
            for thread in alive:
                thread.join()
        lib.yr_ctx_free(self._template)
        lib.yr_pool_free(self.pool)
        self._template = self.pool = ffi.NULL
        os.close(self.listener)

    def _before_status(self) -> None:
        """What the user is told before the program's status goes to the
        front (lifetime.Link.report_after): the pool's refusals, then every
        record written."""
        self._say_refusals()
        self.audit.flush()

    def _say_refusals(self) -> None:
        """The calls the pool refused (ENOMEM) before reading them, because
        their process held receivers stalled or made calls built to cost
        (csrc/pool.c): one notice, before the status, so that they are not
        silent."""
        pool = self.pool
        if pool == ffi.NULL:
            return
        stats = ffi.new("uint64_t[]", lib.YR_POOL_STATS)
        lib.yr_pool_stats(pool, stats)
        refused, stalls = stats[lib.YR_POOL_REFUSED], stats[lib.YR_POOL_STALLS]
        if refused:
            self.audit.notice("calls-refused",
                              f"refused {refused} calls (ENOMEM) of processes whose calls "
                              f"stalled or were built to cost ({stalls} receivers marked "
                              f"stalled; docs/stall.md)", refused=refused, stalls=stalls)

    def hooks(self) -> set[str]:
        """What the filter routes, fixed before the spawn (sandbox/plan.py
        routing: the chain's hook points, what tightening a setting live
        needs where that is cheap, the notice of privileged execs)."""
        return set(self.routing()["hooks"])

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
        """The program runs (the ptrace backend): the front may signal it;
        -v says how it runs; the control socket answers."""
        if self.link is not None:
            self.link.started(pid)
        self.control.start(pid)
        if self.userns:
            self.audit.say(spawn.in_userns())

    def _spawn(self, argv, env, bpf, flags):
        """The ptrace backend's spawn (sandbox/backend_ptrace.py)."""
        if self._no_userns_why:
            self.audit.say(self._no_userns_why)
        if self.userns and bpf is not None and (err := lib.yr_userns_probe()):
            self.audit.say(spawn.no_userns(err))
            self.userns = False
        started = spawn._spawn(argv, env, bpf, flags, self.shield.domain,
                               self.userns and bpf is not None)
        self.main_pid = started.pid
        return started.pid, started.listener, started.status_fd

    def _exec_result(self, status_fd: int) -> int | None:
        return spawn.exec_result(status_fd, self._program)

    def _add_receiver(self, ctx=None) -> bool:
        """One more receiver thread, with a context of its own (ctx: the first
        one's, made with the pool)."""
        if ctx is None:
            ctx = spawn.receiver_context(self._template, self.pool)
            if ctx == ffi.NULL:
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
                if self._add_receiver():
                    continue
                if lib.yr_pool_watch(self.pool) == 0:
                    return                  # closed meanwhile (release): none was missing
                self.audit.internal_error("cannot start another receiver",
                                          "cannot start another receiver")
                time.sleep(0.1)
        except BaseException:
            self.audit.internal_error("the receivers' watchdog failed", traceback.format_exc(),
                                      always=True)

    def load_tables(self, ctx, hooks) -> None:
        """What C settles alone, for the ptrace backend: the routed syscalls
        (fixed), the protected processes and the chain's rules."""
        spawn.protect_pids(self.declared_pids)
        with self.rules_lock:
            spawn.load_tables(ctx, self.routing())

    def load_rules(self, ctx) -> None:
        """C's rules from the chain in force, after a live change (apply_chain,
        rules_lock held). Each is one aligned word that C reads once at the
        point it decides: a call already past that point keeps the old answer,
        the next call reads the new one."""
        spawn.load_rules(ctx, rule_tables(self.chain, self.hooks(), self.shield))

    def apply_chain(self, chain) -> None:
        """Put a new chain in force (a live change; rules_lock held): Python's
        side in one assignment, which every handler reads per call (a walk
        under way finishes with the chain it started with), then C's rules.
        Containment turned on here works by the hooks alone: no Landlock
        domain can be added to a running program."""
        self.chain = chain
        TaskCalls.load_fast_rule(chain, self.audit)   # C's ptrace rule (csrc/ptrace_fast.c)
        self.shield.contained = any(getattr(m, "contained", False) for m in chain.modules)
        ctx = self._template if self._template != ffi.NULL else self._ctx
        if ctx != ffi.NULL:                      # the rules are the sandbox's (csrc/link.c)
            self.load_rules(ctx)

    def stop_control(self) -> None:
        """No live change after this (before the context is freed); the
        control socket is removed."""
        with self.rules_lock:
            self.control.stop()

    def link_table(self) -> int:
        return link_table(self.chain.modules)

    # -- the notification loop -----------------------------------------------

    def _serve(self, ctx, first=None) -> None:
        """One receiver, on its own context until it retires or no caller is
        left; first: (rc, event) yr_next gave before the supervisor was loaded
        (sandbox/launch.py), served first."""
        self._local.ctx = ctx
        try:
            self._serve_loop(first)
        except BaseException:                      # never leave callers waiting
            self._fail_closed("the notification loop failed", traceback.format_exc())
        finally:
            lib.yr_ctx_free(ctx)

    def _serve_loop(self, first=None) -> None:
        rc, ev = first if first is not None else (None, ffi.new("struct yr_event *"))
        while True:
            if rc is None:
                rc = lib.yr_next(self.ctx, ev)
            if rc == 0 or rc == lib.YR_NEXT_RETIRE:
                return
            if rc < 0:
                self._fail_closed(f"receiving notifications failed: {os.strerror(-rc)}")
                return
            rc = None
            try:
                self._handle(ev)
            except Exception:
                self.call_failed(ev, traceback.format_exc())
                lib.yr_reply(self.ctx, ev.id, 0, errno.EPERM)

    def call_failed(self, ev, trace: str) -> None:
        """Our code failed on a call, which is denied (EPERM): said with -v,
        the traceback in the audit log and the journal."""
        syscall = routes.SYSCALL_NAMES.get(ev.sys, str(ev.nr))
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
        ctx, call_id = self.ctx, ev.id
        caller = Caller(ev.tid, ev.tgid, ev.cap_effective,
                        lambda: bool(lib.yr_id_valid(ctx, call_id)))
        if self.paths.gate_refused(caller):
            return                              # answered in C: only its record was ours
        if self.paths.waiting():                # a walk (maybe linkat's source) waits
            self.paths.on_walk(ev, caller)
        else:
            self._handlers[ev.sys](ev, caller)
        self.paths.gate_refused(caller)     # one made as C went on after the verdict


def rule_tables(chain, routed: set[str], shield) -> dict:
    """The chain's rules over the facts C finds, and what the walk asks: the
    chain's own hook points (routed may hold more, for a later tightening:
    sandbox/control.py), the notice of privileged execs if routed."""
    modules, hooks = chain.modules, chain.hooks()
    return {
        "link": link_table(modules),
        "follow": walk_table(modules, "follow_link", FollowLink, lib.YR_FL_COUNT),
        "create": walk_table(modules, "create_in_sticky", CreateInSticky, lib.YR_CF_COUNT),
        "walk_flags": ((lib.YR_WALK_PROC_MEM if "ptrace_access_check" in hooks else 0)
                       | (lib.YR_WALK_PATH_SYMLINK if "path_symlink" in hooks else 0)
                       | (lib.YR_WALK_FOLLOW if "follow_link" in hooks else 0)
                       | (lib.YR_WALK_LANDLOCK if shield.contained
                          and not shield.permissive else 0)
                       | (lib.YR_WALK_EXEC_NOTICE if "exec_notice" in routed else 0)),
    }


def link_table(modules) -> int:
    """The chain's path_link rule over the C side's facts (yr_link_table_allows).
    YAMA_RUN_NO_FAST_PATH=1 sends every undecided link to Python (for tests)."""
    if os.environ.get("YAMA_RUN_NO_FAST_PATH") == "1":
        return 0
    return policy_modules.rule_table(modules, "path_link", PathLink.hypothetical,
                                     lib.YR_LF_COUNT)


def walk_table(modules, hook: str, request, bits: int) -> int:
    """A walk hook's rule over the C side's facts (all ones: nobody hooks it).
    YAMA_RUN_NO_FAST_PATH=1 sends every hook point to Python."""
    if not policy_modules.hooked(modules, hook):
        return (1 << 64) - 1
    if os.environ.get("YAMA_RUN_NO_FAST_PATH") == "1":
        return 0
    return policy_modules.rule_table(modules, hook, request.hypothetical, bits)


def kernel_at_least(major: int, minor: int) -> bool:
    """Is the running kernel this version or newer? (Unparsable: yes.)"""
    release = os.uname().release.split("-")[0].split(".")
    try:
        return (int(release[0]), int(release[1])) >= (major, minor)
    except (IndexError, ValueError):
        return True
