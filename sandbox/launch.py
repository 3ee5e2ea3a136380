"""yama-run's console script: the launch path (docs/startup.md).

A run whose command line this module understands and whose plan is cached
(sandbox/plan.py) starts its program without click, without a profile read
and without a policy module loaded: the front forks the supervisor, which
spawns the program under the cached filter, and the C fast path serves the
program's calls while the supervisor loads the chain in its main thread.
Only a call that Python must decide waits for it. Anything else (another
option, no plan yet, a plan whose inputs changed) goes the cold way, through
sandbox/cli.py, which compiles the plan and keeps it for the next run.

Until the program runs, only modules written in C are imported, and small
ones of ours (the `signal` and `socket` modules, `threading` and `re` each
cost milliseconds; `os` about one: sandbox/bareos.py has what this needs)."""
import _thread
import posix
import sys
import time

from . import argv0, bareos, lifetime
from . import plan as plans

# What the launch path understands; anything else is click's (cli.py).
VALUED = {"--profile": "profile", "--set": "overrides", "--audit-log": "audit_log",
          "--backend": "backend", "--userns": "userns"}
FLAGS = {"--no-profile": "no_profile", "--permissive": "permissive", "-v": "verbose",
         "--verbose": "verbose", "-q": "quiet", "--quiet": "quiet", "--wait": "wait_all"}
CHOICES = {"backend": ("auto", "notify"), "userns": ("auto", "never")}
FAST_SWITCH_INTERVAL = 1e-4     # while the chain loads: the reaper and the notify thread wait on it


class Run:
    """One command line, as cli.py's options would read it."""

    def __init__(self):
        self.profile = self.audit_log = None
        self.overrides: list[str] = []
        self.backend = self.userns = "auto"
        self.no_profile = self.permissive = self.verbose = self.quiet = self.wait_all = False
        self.command: list[str] = []

    def options(self) -> plans.Options:
        return plans.Options(self.profile, self.no_profile, self.overrides, self.permissive)


def parse(args: list[str]) -> Run | None:
    """The command line, or None when it is not the launch path's to read:
    it then goes to click, which reads it exactly as it always has."""
    run, seen = Run(), set()
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        name, eq, value = arg.partition("=")
        if name in VALUED:
            if not eq:
                i += 1
                if i == len(args):
                    return None
                value = args[i]
            attr = VALUED[name]
            # (an empty value is click's to refuse: it is never "not given")
            if not value or value.startswith("-") or (attr in seen and attr != "overrides"):
                return None
            if attr in CHOICES and value not in CHOICES[attr]:
                return None
            seen.add(attr)
            if attr == "overrides":
                run.overrides.append(value)
            else:
                setattr(run, attr, value)
        elif arg in FLAGS:
            setattr(run, FLAGS[arg], True)
        elif len(arg) > 2 and arg[1] != "-" and set(arg[1:]) <= {"v", "q"}:
            run.verbose |= "v" in arg
            run.quiet |= "q" in arg
        else:
            return None
        i += 1
    if i == len(args) or (run.profile and run.no_profile):
        return None
    run.command = args[i:]
    return run


def main(argv: list[str] | None = None, front=None) -> None:
    """The console script; under another name (a symlink called firefox-esr),
    that program run under its profile with its arguments untouched.
    front: (fd, pid) of the front the launcher became (lifetime.split)."""
    since = time.time_ns()
    lifetime.hold_standard_fds()
    # yama-run's own messages never change the program's exit status: a full
    # or closed stderr only loses them, on the cached path as on the cold one.
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:          # closed when Python started
            setattr(sys, name, open(bareos.DEVNULL, "w", encoding="utf-8"))
    inherited = lifetime.inherited_fds(ours=front[0] if front else None)
    if argv is None and argv0.invoked_as(sys.argv[0]):
        argv = argv0.arguments(sys.argv[0], sys.argv[1:])
    args = sys.argv[1:] if argv is None else list(argv)
    run = parse(args)
    miss = "options the launch path does not read"
    if run is not None:
        try:
            posix._exit(_cached(run, inherited, front))
        except plans.Miss as exc:
            miss = str(exc)
    from . import cli
    cli.main(args, inherited=inherited, since=since, miss=miss, front=front)


def _cached(run: Run, inherited, front) -> int:
    """The run from its cached plan; raises plans.Miss before anything started."""
    if run.audit_log is not None:
        _check_writable(run.audit_log)
    if not _kernel_has_notify(run.backend):
        raise plans.Miss("the ptrace backend may be needed")
    from ._yama import lib
    plan, where = plans.load(plans.key(run.options(), run.command), lib.yr_landlock_abi)
    say = Sayer(run.verbose)
    for line in plan["says"]:               # escaped when the plan was made
        say(line)
    say(f"plan: from the cache ({where})")
    env = bareos.environ()
    return lifetime.split(lambda link: _supervise(plan, run, env, link, say), run.wait_all,
                          inherited, front)


def _check_writable(path: str) -> None:
    """--audit-log must open as Audit opens it, else the cold path says why.
    What the name holds is judged before it is opened (bareos.open_judged:
    the race audit.open_log's docstring tells): another's file, and a
    symlink, are for audit.open_log's rule, on the cold path. O_NONBLOCK: a
    FIFO fails (ENXIO), never waits for a reader."""
    def ours(st) -> None:
        if st.st_uid != posix.geteuid():    # another's (in /tmp?): audit.open_log's rule judges it
            raise plans.Miss(f"--audit-log {path}: a file of uid {st.st_uid}")
    try:
        fd = bareos.open_judged(path, posix.O_WRONLY | posix.O_APPEND | posix.O_CLOEXEC
                                | posix.O_NONBLOCK, ours)
    except OSError as exc:                  # (a directory: EISDIR)
        raise plans.Miss(f"--audit-log {path}: {exc.strerror}") from None
    if fd is None:
        raise plans.Miss(f"--audit-log {path}: a symlink")
    posix.close(fd)


def _kernel_has_notify(backend: str) -> bool:
    """Supervisor.run falls back to the ptrace backend before Linux 5.9."""
    if backend == "notify":
        return True
    release = posix.uname().release.split("-")[0].split(".")
    try:
        return (int(release[0]), int(release[1])) >= (5, 9)
    except (IndexError, ValueError):
        return True


class Sayer:
    """-v lines before the supervisor's Audit is loaded, as it prints them.
    Every text is yama-run's own or was escaped when the plan was made (the
    enforcement lines carry no program-controlled text)."""

    def __init__(self, verbose: bool):
        self.verbose = verbose

    def __call__(self, text: str) -> None:
        if self.verbose:
            try:
                posix.write(2, f"yama-run: {text}\n".encode(errors="surrogateescape"))
            except OSError:
                pass                    # a lost stderr only loses messages


# -- the supervisor process --------------------------------------------------------------

def _supervise(plan: dict, run: Run, env: dict, link, say) -> int:
    """In the supervisor (lifetime.split); errors as cli.py's serve gives them."""
    from . import spawn
    try:
        return _start_and_serve(plan, run, env, link, say)
    except spawn.SetupError as exc:
        from .audit import printable
        spawn._say_always(printable(str(exc)))
    except Exception:
        import traceback
        from .audit import Audit
        Audit(run.audit_log, run.verbose).internal_error(
            "starting the program", traceback.format_exc(), always=True)
    return lifetime.EXIT_SETUP


def _start_and_serve(plan: dict, run: Run, env: dict, link, say) -> int:
    """The program first, then the chain.

    Three threads: this one, which spawned the program, waits for it (the
    reaper: it gives the front the status and ends this process when the
    last program process is gone, whether or not the chain has finished
    loading); the notify thread serves calls in C from the start and waits
    for the Supervisor only at a call Python must decide; the loader, which
    the notify thread starts just before it enters C, loads the chain and
    the Supervisor. The reaper is the thread that forked the
    program because a program that asks PTRACE_TRACEME makes that thread its
    tracer, and only the tracer's ptrace requests let its stops go
    (lifetime.reap_all)."""
    from . import spawn
    try:
        started = spawn.start(plan, run.command, env, run.userns, say,
                              protect=(link.front,) if link is not None else ())
    except spawn.ListenerUnavailable as exc:        # nested: Supervisor.run's fallback
        if run.backend != "auto":
            raise
        supervisor = _load(plan, run, link)
        return _closing(supervisor, supervisor._run_traced, run.command, env, str(exc))
    spawn.announce(started, link, plan, say)
    state = Loading(started)
    if started.ctx != spawn.ffi.NULL:
        # The notify thread starts the loader itself, as it enters C: this
        # thread goes on to wait for the exec (its GIL released there) without
        # waiting for the notify thread to be scheduled first.
        _thread.start_new_thread(_notify_thread, (state, plan, run, link))
    else:                       # no filter: no call will ever be asked, nothing to load
        state.serving.release()
        state.loaded.release()
    _reap(state, link, run.command[0])      # (never returns)
    return lifetime.EXIT_SETUP


class Loading:
    """What the three threads share."""

    def __init__(self, started):
        self.started = started
        self.supervisor = None
        self.loaded = _locked()     # released once the supervisor is loaded (or failed)
        self.serving = _locked()    # released when the notify thread is done

    def wait_loaded(self):
        self.loaded.acquire()
        self.loaded.release()
        return self.supervisor


def _locked():
    lock = _thread.allocate_lock()
    lock.acquire()
    return lock


def _notify_thread(state: Loading, plan: dict, run: Run, link) -> None:
    """Start the loader, serve in C until a call needs Python; then wait for
    the supervisor and serve on as it always does (Supervisor._serve).

    The program waits for its first call to be served, so this thread must
    not wait for the GIL while the chain loads: the loader starts here, and
    can only take the GIL once this thread releases it, in yr_next. If the
    loader cannot be started, the program is killed (fail closed): nobody
    would ever decide its calls."""
    from . import spawn
    try:
        try:
            event = spawn.ffi.new("struct yr_event *")
            _thread.start_new_thread(_loader_thread, (state, plan, run, link))
        except BaseException:
            import traceback
            _fail_closed(state.started, traceback.format_exc())
            state.loaded.release()
            raise
        rc = spawn.lib.yr_next(state.started.ctx, event)     # (the GIL released)
        supervisor = state.wait_loaded()
        if supervisor is not None:
            supervisor._serve(state.started.ctx, (rc, event))
        else:                   # the program is killed: a refusal kept is never recorded
            spawn.lib.yr_gate_refusal_recorded(state.started.ctx)
    finally:
        state.serving.release()


def _loader_thread(state: Loading, plan: dict, run: Run, link) -> None:
    """The chain and the Supervisor, while the program runs; a failure kills
    the program (fail closed)."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(FAST_SWITCH_INTERVAL)
    try:
        supervisor = _load(plan, run, link)
        supervisor.attach(state.started, announced=True)
        state.supervisor = supervisor
    except BaseException:
        import traceback
        _fail_closed(state.started, traceback.format_exc())
    finally:
        sys.setswitchinterval(interval)
        state.loaded.release()


def _reap(state: Loading, link, program: str) -> None:
    """The program's exit status to the front as soon as it is known; the
    process ends with the last program process."""
    from . import spawn
    status = lifetime.EXIT_SETUP
    try:
        status = lifetime.reap_all(state.started.pid, link, state.started.status_fd,
                                   spawn.settle_exec(program))
        if state.loaded.acquire(False):         # loaded: its last records written
            state.loaded.release()
            state.serving.acquire()
            if state.supervisor is not None:
                state.supervisor.release()
                state.supervisor.audit.close()
    finally:
        link.finish(status)
        posix._exit(0)


def _load(plan: dict, run: Run, link):
    """The chain of the plan's profile and the Supervisor that serves it."""
    from . import journal
    from . import modules as policy_modules
    from .audit import Audit
    from .chain import Chain
    from .profile import Profile
    from .supervisor import Supervisor
    profile = plan["profile"]
    modules = [policy_modules.load(name)(profile["settings"].get(name, {}))
               for name in profile["chain"]]
    audit = Audit(run.audit_log, run.verbose)
    chain = Chain(modules, audit, run.permissive)
    audit.journal = journal.open_default(run.command[0], profile["name"])
    audit.quiet = run.quiet
    # The profile as the control socket shows it (--list-running) and live
    # changes start from it: its name, file and where each setting came from.
    made_from = Profile(profile["name"], profile["source"], list(profile["chain"]),
                        {name: dict(values) for name, values in profile["settings"].items()},
                        dict(profile["origins"]))
    supervisor = Supervisor(chain, audit, run.backend, link=link, userns=run.userns,
                            profile=made_from, plan=plan)
    supervisor._program = run.command[0]
    supervisor.argv = list(run.command)
    return supervisor


def _closing(supervisor, call, *args) -> int:
    try:
        return call(*args)
    finally:
        supervisor.audit.close()


def _fail_closed(started, trace: str) -> None:
    """The chain could not be loaded: nobody will decide the program's calls.
    As Supervisor._fail_closed: kill it, drop the listener (ENOSYS)."""
    from . import spawn
    # The message goes to a copy of stderr taken first: once the program is
    # killed, the reaper (csrc/lifetime.c, no supervisor loaded) detaches at
    # once, /dev/null over stderr, and the front exits, so a write to fd 2
    # after the kill was lost whenever the reaper was the quicker.
    try:
        stderr = posix.dup(2)
    except OSError:
        stderr = 2                      # (no descriptor left: the kill comes first)
    try:
        lifetime.kill_quietly(started.pid, 9)
        if started.listener >= 0:
            null = posix.open(bareos.DEVNULL, posix.O_RDONLY | posix.O_CLOEXEC)
            posix.dup2(null, started.listener, inheritable=False)
            posix.close(null)
        # Said last: the program may hold a write to stderr (a stopped terminal)
        last = trace.strip().splitlines()[-1] if trace.strip() else "unknown error"
        spawn._say_always(f"internal error in loading the supervisor: {last}; "
                          "killed the sandboxed program", stderr)
    finally:
        if stderr != 2:
            posix.close(stderr)
