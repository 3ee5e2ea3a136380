"""The program started from a plan (sandbox/plan.py): under its filter, with
the C fast path ready to serve its calls before any policy module is loaded.

Both launch paths use this: the cold one (sandbox/cli.py, the chain already
loaded) and the cached one (sandbox/launch.py, which loads the chain while
the program runs). Only standard-library modules written in C are imported
here (`posix`, not `os`), and the extension: this runs before the program
starts."""
import _signal as signal
import errno
import posix

from . import sealed
from ._yama import ffi, lib
from .bareos import fsencode, join
from .lifetime import EXIT_NOEXEC, EXIT_NOTFOUND, forwarded
from .shield import Shield

WAIT_KILLABLE_RECV = 1 << 5
NEW_LISTENER = 1 << 3
CAP_SYS_PTRACE = 19


class SetupError(Exception):
    """yama-run itself could not start the program (exit 125)."""


class ListenerUnavailable(SetupError):
    """The kernel refused a user-notify listener (EBUSY: another one watches)."""


class Started:
    """The running program as the supervisor holds it."""

    def __init__(self, pid: int, listener: int, status_fd: int, userns: bool):
        self.pid = pid
        self.listener = listener        # -1: no filter, nothing to serve
        self.status_fd = status_fd      # reads 0 bytes once exec succeeded
        self.userns = userns            # it runs in a user namespace of ours
        self.template = ffi.NULL        # the tables every receiver's context copies
        self.pool = ffi.NULL            # the receivers and their watchdog (csrc/pool.c)
        self.ctx = ffi.NULL             # the first receiver's context, in the pool
        self.nondumpable = False


YAMA_SCOPE = "/proc/sys/kernel/yama/ptrace_scope"


def host_yama_scope() -> int:
    """The host's Yama ptrace scope; 0 where Yama is not there."""
    try:
        with open(YAMA_SCOPE, "rb") as f:
            return int(f.read().strip() or b"0")
    except (OSError, ValueError):
        return 0


def userns_plan(choice: str) -> tuple[bool, str | None]:
    """Run the program in a user namespace of ours, and if not, why (the -v
    line; None where no reason needs saying). Only without CAP_SYS_PTRACE
    (docs/everyday.md), and not where the host's Yama restricts ptrace:
    every process of the namespace's owner holds CAP_SYS_PTRACE over it,
    which Yama's scopes 1 and 2 accept. Whether the kernel allows one is
    found by the spawn."""
    if has_cap_sys_ptrace():
        return False, None
    if choice == "never":
        return False, NEVER_USERNS
    if scope := host_yama_scope():
        return False, (f"no user namespace (the host's Yama ptrace_scope is {scope}: in a "
                       "namespace of yours every process of yours could trace the sandbox): "
                       "the calls of non-dumpable programs cannot be served and fail with EPERM")
    return True, None


def filter_probe_failed() -> str:
    """Why the probe for WAIT_KILLABLE_RECV failed. A traced process (inside
    a yama-run of the ptrace backend) cannot take a listener at all: it was
    said to run on a kernel without the flag, before its documented 125."""
    tracer = lib.yr_tracer_of(posix.getpid())
    if tracer > 0:
        return (f"we are traced (by {tracer}, such as an outer yama-run with the ptrace "
                "backend): the probe for WAIT_KILLABLE_RECV failed, the kernel's support "
                "not known")
    return "kernel lacks WAIT_KILLABLE_RECV: a signal may repeat a notified call"


def start(plan: dict, argv: list[str], env: dict[str, str], userns_choice: str,
          say, protect=()) -> Started:
    """Spawn argv under the plan's filter and make its C context: every routed
    syscall mapped, the chain's tabulated rules loaded. say(text): -v lines.
    Raises SetupError (ListenerUnavailable for EBUSY: its child reaped), or
    returns with the program past its filter (its exec and first calls wait
    to be served)."""
    for line in plan["enforcement"]:
        say(line)
    if plan["bpf"] is not None:
        say_if_too_many_groups()
    userns, why_not = userns_plan(userns_choice)
    if why_not:
        say(why_not)
    bpf = plan["bpf"]
    flags = NEW_LISTENER
    if bpf is not None and lib.yr_filter_flags_supported(NEW_LISTENER | WAIT_KILLABLE_RECV):
        flags |= WAIT_KILLABLE_RECV
    elif bpf is not None:
        say(filter_probe_failed())
    if lib.yr_set_subreaper() < 0:
        raise SetupError("cannot become a child subreaper")
    signal.pthread_sigmask(signal.SIG_BLOCK, forwarded() + (signal.SIGCHLD,))
    protect_pids(protect)
    if plan["exec_watch"]:
        lib.yr_exec_watch(1)    # notes from the very first call (sandbox/taskwatch.py takes them)
    started = _spawn(argv, env, bpf, flags, plan["landlock"], userns and bpf is not None)
    if started.userns and started.listener < 0:
        err = _userns_failure(started)
        if err:         # the child failed before its filter: nothing ran; again without
            say(no_userns(err))
            started = _spawn(argv, env, bpf, flags, plan["landlock"], False)
    if bpf is not None and started.listener < 0:
        try:
            exec_result(started.status_fd, argv[0])     # raises with the child's reason
        except ListenerUnavailable:
            sealed.unseal()         # nothing of the program's ran: the ptrace backend may load
            raise
        finally:
            posix.waitpid(started.pid, 0)               # it never became the program
        raise SetupError("the child did not hand over the seccomp listener")
    if bpf is not None:
        _context(started, plan, say)
    return started


def say_if_too_many_groups() -> None:
    """The program starts in our groups: past those an identity keeps
    (csrc/creds.c), every call performed for it is refused. Said, always."""
    groups = len(posix.getgroups())
    if groups > lib.YR_MAX_GROUPS:
        _say_always(f"this process is in {groups} supplementary groups, more than the "
                    f"{lib.YR_MAX_GROUPS} the supervisor acts with: every call it performs "
                    "for the program is refused (EPERM) while it keeps them")


def _spawn(argv, env, bpf, flags: int, domain: int, userns: bool) -> Started:
    sealed.seal()           # before the program exists: it may write the package's files
    keep = []

    def cstr(s: str):
        buf = ffi.new("char[]", fsencode(s))
        keep.append(buf)
        return buf

    c_argv = ffi.new("char *[]", [cstr(a) for a in argv] + [ffi.NULL])
    c_env = ffi.new("char *[]", [cstr(f"{k}={v}") for k, v in env.items()] + [ffi.NULL])
    path = search_from(argv[0], env.get("PATH"))
    c_path = cstr(path) if path is not None else ffi.NULL
    out = ffi.new("struct yr_spawn_result *")
    if bpf is not None:
        if userns:
            flags |= lib.YR_SPAWN_USERNS
        rc = lib.yr_spawn_path(cstr(argv[0]), c_argv, c_env, c_path, ffi.from_buffer(bpf),
                               len(bpf) // 8, flags, domain, out)
    else:
        rc = lib.yr_spawn_path(cstr(argv[0]), c_argv, c_env, c_path, ffi.NULL, 0, 0, 0, out)
    if rc < 0:
        raise SetupError(f"cannot start {argv[0]}: {posix.strerror(-rc)}")
    return Started(out.pid, out.listener, out.status_fd, userns)


def search_from(program: str, path: str | None) -> str | None:
    """PATH from its first entry where program may be: the program's execvp
    search (csrc/spawn.c) then skips the directories that lack it, each of
    which would cost a notified execve (exec_notice) failing with ENOENT.
    Only entries whose lookup says ENOENT or ENOTDIR are skipped, the errors
    the search passes over; the first other answer (the file, EACCES, any
    error) starts the search as before, so it finds and reports the same. A
    directory changed in between is a race the search itself has: the
    program's exec is checked whatever it finds."""
    if path is None or "/" in program:
        return path
    entries = path.split(":")
    for i, entry in enumerate(entries):
        try:
            posix.stat(join(entry or ".", program))
        except (FileNotFoundError, NotADirectoryError):
            continue
        except (OSError, ValueError):
            pass
        return ":".join(entries[i:])
    return path


NEVER_USERNS = ("no user namespace (--userns=never): the calls of non-dumpable programs "
                "cannot be served and fail with EPERM")


def in_userns() -> str:
    return (f"in a user namespace owned by uid {posix.geteuid()}: the program keeps its ids, "
            "others' show as 65534 (docs/everyday.md)")


def announce(started: Started, link, plan: dict, say) -> None:
    """The program runs: the front may signal it; the supervisor is made out
    of its reach; -v says how it runs."""
    if link is not None:
        link.started(started.pid)
    if started.userns:
        say(in_userns())
    if started.ctx != ffi.NULL:
        harden(started)
        say(plan["shield_says"][started.nondumpable])
        say("backend: notify")


def no_userns(err: int) -> str:
    return (f"no user namespace ({posix.strerror(err)}): the calls of non-dumpable programs "
            "cannot be served and fail with EPERM")


def _userns_failure(started: Started) -> int:
    """The errno of a child that could not make the user namespace (reaped),
    else 0 with its status left to read."""
    data = _read_status(started.status_fd)
    failure = _failure(data)
    if failure is None or failure.stage != lib.YR_STAGE_USERNS:
        started.status_fd = _replay(data)
        return 0
    posix.close(started.status_fd)
    posix.waitpid(started.pid, 0)
    return failure.err


def _read_status(status_fd: int) -> bytes:
    return posix.read(status_fd, 8)


def _replay(data: bytes) -> int:
    """A pipe that reads `data` again, for exec_result."""
    r, w = posix.pipe2(posix.O_CLOEXEC)
    posix.write(w, data)
    posix.close(w)
    return r


def _failure(data: bytes):
    if not data:
        return None
    failure = ffi.new("struct yr_spawn_failure *")
    ffi.memmove(failure, data, min(len(data), ffi.sizeof(failure[0])))
    return failure


def exec_result(status_fd: int, program: str) -> int | None:
    """None when the program is running; else the exit status to give (a
    message said for a program that cannot be run). Raises SetupError when
    the sandbox could not be set up."""
    try:
        data = _read_status(status_fd)
    finally:
        posix.close(status_fd)
    return exec_outcome(data, program)


def exec_outcome(data: bytes, program: str) -> int | None:
    """exec_result of what the status pipe held."""
    failure = _failure(data)
    if failure is None:
        return None
    reason = posix.strerror(failure.err)
    if failure.stage == lib.YR_STAGE_EXEC:
        from .audit import printable
        _say_always(f"{printable(program)}: {reason}")
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


def settle_exec(program: str):
    """For lifetime.reap_all: the main program's status, or the one its
    failed exec gives (exec_outcome)."""
    def settle(status: int, failure: bytes) -> int:
        outcome = exec_outcome(failure, program)
        return outcome if outcome is not None else status
    return settle


def _say_always(text: str, fd: int = 2) -> None:
    try:
        posix.write(fd, f"yama-run: {text}\n".encode(errors="surrogateescape"))
    except OSError:
        pass                            # a lost stderr only loses messages


def _context(started: Started, plan: dict, say) -> None:
    """The notification contexts: a template with what C settles alone (from
    the plan), the receiver pool, and the first receiver's own context."""
    started.template = lib.yr_ctx_template(started.listener)
    started.pool = lib.yr_pool_new()
    if started.template == ffi.NULL or started.pool == ffi.NULL:
        raise SetupError("cannot allocate the notification context")
    load_tables(started.template, plan)
    if lib.yr_ctx_sync_wakeup(started.template) < 0:
        say("kernel lacks SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: slower replies")
    started.ctx = receiver_context(started.template, started.pool)
    if started.ctx == ffi.NULL:
        raise SetupError("cannot allocate the notification context")


def receiver_context(template, pool):
    """Another receiver's context (the template's tables), in the pool; NULL
    when none can be had."""
    ctx = lib.yr_ctx_clone(template)
    if ctx != ffi.NULL and lib.yr_pool_join(pool, ctx) < 0:
        lib.yr_ctx_free(ctx)
        return ffi.NULL
    return ctx


def load_tables(ctx, plan: dict) -> None:
    """The routed syscalls (arch, nr -> logical id) and the chain's rules over
    the facts C finds (bit f set: every module allows facts f)."""
    arches, numbers, ids = zip(*plan["syscalls"]) if plan["syscalls"] else ((), (), ())
    if lib.yr_ctx_map_all(ctx, ffi.new("uint32_t[]", arches), ffi.new("int32_t[]", numbers),
                          ffi.new("int32_t[]", ids), len(arches)) < 0:
        raise SetupError(f"cannot map the {len(arches)} routed syscalls")
    load_rules(ctx, plan["tables"])


def load_rules(ctx, tables: dict) -> None:
    """The chain's rules (at start, and again after a live change)."""
    lib.yr_ctx_link_table(ctx, tables["link"])
    lib.yr_walk_setup(tables["follow"], tables["create"], tables["walk_flags"])


def protect_pids(pids) -> None:
    """yama-run's own processes besides this one (the front): their /proc
    entries out of the program's reach (csrc/gate.c), declared before the
    program runs."""
    for pid in pids:
        if pid != posix.getpid() and lib.yr_gate_protect(pid) < 0:
            raise SetupError("too many yama-run processes to protect")


def harden(started: Started) -> None:
    """After the spawn (the program inherits neither): the supervisor out of
    the program's reach (sandbox/shield.py)."""
    shield = Shield()
    shield.harden_supervisor()
    started.nondumpable = shield.nondumpable


def has_cap_sys_ptrace() -> bool:
    """Do we hold CAP_SYS_PTRACE (over the processes of our user namespace)?"""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"CapEff:"):
                    return bool(int(line.split()[1], 16) >> CAP_SYS_PTRACE & 1)
    except (OSError, ValueError):
        pass
    return False
