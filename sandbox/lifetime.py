"""The program's lifetime seen from yama-run: two processes, the tree reaped,
signals forwarded, the exit status given.

The process the shell waits on (the front, csrc/front.c) only waits. The
installed command is the front from its first instruction: csrc/launcher.c
forks, and its child execs the interpreter that becomes the supervisor
(split() is then given the link). Started as `python3 -m sandbox.cli`,
split() forks the supervisor and this process waits in the same C code.
The supervisor is the program's parent and a child subreaper: it serves the
whole tree. The front forwards the signals sent to yama-run to the program
(through a pidfd the supervisor hands it, so a reused pid is never
signalled), and ends as the program did as soon as the supervisor sends its
status, which it does when the main program exits: with its exit code, or
killed by the signal that killed it (a code of 128+N would be a normal exit
to the shell, which stops a loop only for a child killed by SIGINT). The main program's
job-control stops are the front's too: the supervisor's wait sees them
(csrc/lifetime.c), the front stops with the same signal, and the SIGCONT
that continues it (`fg`) goes on to the program (csrc/front.c). The supervisor leaves
the caller's session once the program has started (the program keeps it);
at the main program's exit it detaches (standard streams on /dev/null, every
descriptor inherited from the caller closed) and serves what the program
left behind until the last process exits. `--wait` keeps the front until then instead.

If the front is killed (kill -9 of yama-run) while the program runs, the
supervisor learns it through its parent-death signal and kills the program,
as before the split, when killing yama-run killed the program."""
import _signal as signal     # the C module: `signal` costs milliseconds of enum classes
import posix
import sys
import time

from .bareos import DEVNULL


def _lib():
    """The C extension, imported only once a program is run (the CLI imports
    this module for its descriptors before it knows: --help works without)."""
    from ._yama import lib
    return lib

EXIT_SETUP = 125
EXIT_NOEXEC = 126
EXIT_NOTFOUND = 127

JOB_CONTROL = (signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)   # never stop the supervisor
FRONT_GONE = signal.SIGRTMIN + 3    # the supervisor's parent-death signal

RECORDS_WAIT = 10.0     # s: the longest the status waits for a record due (the chain may load)
MSG_HELLO, MSG_PIDFD = b"H", b"P"   # csrc/front.c reads them; the status: csrc/lifetime.c


def forwarded() -> tuple[int, ...]:
    """The signals sent to yama-run that the front passes on to the program
    (csrc/front.c's list): the supervisor blocks them, they are not its."""
    lib, signals = _lib(), []
    while sig := lib.yr_front_forwarded(len(signals)):
        signals.append(sig)
    return tuple(signals)


# -- descriptors that belong to the caller ------------------------------------------

def hold_standard_fds() -> None:
    """A standard descriptor the caller closed is held on /dev/null,
    close-on-exec: none of ours may take its number (detaching overwrites 0, 1
    and 2: csrc/lifetime.c), and the program still starts with it closed, as
    it would natively."""
    for fd in (0, 1, 2):
        try:
            posix.fstat(fd)
        except OSError:
            null = posix.open(DEVNULL, posix.O_RDWR)
            if null != fd:
                posix.dup2(null, fd, inheritable=False)
                posix.close(null)
            else:
                posix.set_inheritable(fd, False)


def inherited_fds(ours: int | None = None) -> list[tuple[int, int, int]]:
    """(fd, device, inode) of every descriptor open at start-up: the caller's
    (its terminal, its pipes), to be closed when the supervisor detaches;
    ours (the link to the launcher's front) is not the caller's."""
    found = []
    for name in posix.listdir("/proc/self/fd"):
        if int(name) == ours:
            continue
        try:
            st = posix.fstat(int(name))
        except OSError:
            continue                    # the directory listing's own descriptor
        found.append((int(name), st.st_dev, st.st_ino))
    return found


# -- the two processes ----------------------------------------------------------------

def split(serve, wait_all: bool, inherited, front=None) -> int:
    """serve(link) in the supervisor, which reports through link, while the
    front waits for the status and forwards signals (csrc/front.c).

    front: (fd, pid), this process's end of the link and the front's pid,
    when the launcher is the front already (csrc/launcher.c): this process
    is the supervisor, and never returns. Otherwise the supervisor is forked
    here, and this process returns the status as the front."""
    lib = _lib()
    lib.yr_front_block()            # nothing of the front's lost before it waits
    signal.pthread_sigmask(signal.SIG_BLOCK, (FRONT_GONE,))
    if front is not None:
        fd, front_pid = front
        _supervise(serve, fd, front_pid, wait_all, inherited)
    import _socket as socket        # (not on the installed command's way)
    front_end, sup_end = socket.socketpair(socket.AF_UNIX,
                                           socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    front_pid = posix.getpid()
    _flush_standard_streams()
    pid = posix.fork()
    if pid == 0:
        front_end.close()
        _supervise(serve, sup_end.detach(), front_pid, wait_all, inherited)
    sup_end.close()
    return lib.yr_front(front_end.fileno(), pid)


def _flush_standard_streams() -> None:
    """What this process wrote before the fork, out now: neither process
    flushes it later (the supervisor ends with _exit, and the front may be
    killed by the program's signal: csrc/front.c), and the supervisor's
    copy would be a second one."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass                        # a lost stream only loses messages


def _supervise(serve, sock: int, front: int, wait_all: bool, inherited) -> None:
    """The supervisor process: serve(link), report, and end."""
    # The supervisor is never stopped by job control: the program shares
    # its terminal and (until Link.started) its process group, and could stop
    # it through the terminal (TOSTOP set, the terminal given to a group
    # of its own, then a denial line written: SIGTTOU), freezing every
    # routed call of the sandbox and the control socket; a Ctrl-Z would
    # freeze what the program left behind with the job. Blocked, SIGTTOU
    # lets the write through and SIGTSTP stays pending; every thread
    # inherits this mask, and the program starts with an empty one
    # (spawn.c).
    signal.pthread_sigmask(signal.SIG_BLOCK, JOB_CONTROL)
    link = Link(sock, front, wait_all, inherited)
    status = EXIT_SETUP
    try:
        status = serve(link)
    finally:
        link.finish(status)
        posix._exit(0)


def _wait_unrecorded() -> None:
    """Until the gate's refusals answered in C are recorded by Python
    (csrc/gate.c, yr_gate_unrecorded), at most RECORDS_WAIT: a program that
    exits on its EACCES would otherwise have its status sent first, the
    supervisor still loading or its receiver not yet back in Python, and a
    log read once yama-run returned would lack the record (its -v line,
    written after the detach, would go nowhere)."""
    lib = _lib()
    deadline = time.monotonic() + RECORDS_WAIT
    while lib.yr_gate_unrecorded() > 0 and time.monotonic() < deadline:
        time.sleep(0.001)


class Link:
    """The supervisor's end: what it tells the front, and its lifetime."""

    def __init__(self, sock: int, front: int, wait_all: bool, inherited):
        self.sock = sock                # -1 once closed
        self.front = front
        self.wait_all = wait_all
        self.detached = False
        self._before_report = lambda: None  # the supervisor's: its records written first
        self.c, self._keep = _c_link(sock, front, wait_all, inherited)
        # If the front dies while the program runs, we hear it (FRONT_GONE).
        _lib().yr_set_pdeathsig(FRONT_GONE)
        if posix.getppid() != front:    # it died before the signal was armed
            posix.kill(posix.getpid(), FRONT_GONE)
        # From here, a silent end is a setup error. (An error: the front is
        # gone, nobody to tell.)
        _lib().yr_front_send(self.c, MSG_HELLO, -1, False)

    def started(self, pid: int) -> None:
        """The program runs as pid: the front gets a pidfd to signal it, and
        the supervisor leaves the caller's session, which the program keeps
        with its terminal. Left at the program's exit, as it used to be, the
        new session's scheduling group (autogroup) took the CPU from the
        reaper for a tick at the moment the front waited for the status."""
        try:
            posix.setsid()
        except OSError:
            pass                        # a group leader already: cannot, and need not
        try:
            pidfd = posix.pidfd_open(pid)  # our unreaped child: it is the program
        except OSError:
            return
        _lib().yr_front_send(self.c, MSG_PIDFD, pidfd, True)
        posix.close(pidfd)

    def main_exited(self, status: int) -> None:
        """The main program is gone: the front exits with its status now,
        unless asked to wait for the whole tree."""
        if not self.wait_all:
            self.finish(status, detach_first=True)

    def report_after(self, flush) -> None:
        """A supervisor that writes records exists: flush() writes them out
        before the status goes, so the status is sent from here from now on,
        never from the reaper's wait in C (csrc/lifetime.c)."""
        self._before_report = flush
        _lib().yr_front_records_first()

    def finish(self, status: int, detach_first: bool = False) -> None:
        """The status to the front ("S"), detached first if asked, in one C
        call, unless the reaper's wait sent it already (detached first)."""
        if self.sock < 0:
            return                      # reported and closed
        if self.c.reported:
            self.detached = True
        else:
            _wait_unrecorded()
            self._before_report()
            _lib().yr_front_report(self.c, status, detach_first)
            self.detached = detach_first
        posix.close(self.sock)
        self.sock = -1


def _c_link(sock: int, front: int, wait_all: bool, inherited):
    """struct yr_front_link, and the arrays it points to (kept alive with it)."""
    from ._yama import ffi
    fds, devs, inos = zip(*inherited) if inherited else ((), (), ())
    keep = (ffi.new("int[]", list(fds)), ffi.new("uint64_t[]", list(devs)),
            ffi.new("uint64_t[]", list(inos)))
    link = ffi.new("struct yr_front_link *", {"sock": sock, "front": front, "wait_all": wait_all,
                                        "fds": keep[0], "devs": keep[1], "inos": keep[2],
                                        "n": len(fds)})
    return link, keep


# -- the supervisor's reaper (notify backend) -----------------------------------------

def reap_all(main_pid: int, link=None, exec_fd: int = -1, settle=None) -> int:
    """Wait until no descendant is left. The main program's status goes to
    the front as soon as it is known, as settle(status, failure) gives it:
    failure is what the spawn's status pipe exec_fd held (b"": the exec
    succeeded), read once the program has exited. Where nothing must be
    written first, the C wait reports it itself, before the GIL is taken back
    (csrc/lifetime.c); else link.main_exited does."""
    from ._yama import ffi
    main_status, failure = ffi.new("int *"), ffi.new("char[64]")
    # Only the first exit of main_pid is the program's (yr_reap_main returns
    # at it): once it is reaped its pid is free, and a process it left
    # behind may be given that pid (a fork loop wraps pid_max; root may
    # write ns_last_pid) and exit later with a status of its choosing,
    # which --wait would otherwise report as the program's.
    n = _lib().yr_reap_main(main_pid, FRONT_GONE, exec_fd, main_status, failure, len(failure),
                            link.c if link is not None else ffi.NULL)
    if n < 0:
        return EXIT_SETUP                           # no child at all
    status = main_status[0]                         # as exit_status gives it
    if settle is not None:
        status = settle(status, ffi.buffer(failure, n)[:])
    if link is not None:
        link.main_exited(status)
    while True:                 # what the program left behind, to the last
        while True:
            try:
                pid, raw = posix.waitpid(-1, posix.WNOHANG)
            except ChildProcessError:
                return status
            if pid == 0:
                break
            if posix.WIFSTOPPED(raw):   # it called PTRACE_TRACEME: we trace no one
                _lib().yr_ptrace_release(pid, posix.WSTOPSIG(raw))
        signal.sigwaitinfo({signal.SIGCHLD, FRONT_GONE})


def exit_status(raw: int) -> int:
    """A wait status as the front is sent it: the code, or -N for signal N,
    the front then killed by N (csrc/front.c). The ptrace backend's; the
    notify reaper's is csrc/lifetime.c's program_status."""
    return posix.waitstatus_to_exitcode(raw)


def kill_quietly(pid: int, sig: int) -> None:
    try:
        posix.kill(pid, sig)
    except ProcessLookupError:
        pass
