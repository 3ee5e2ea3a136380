"""The ptrace backend: the same filter with SECCOMP_RET_TRACE instead of
user-notify, for where a listener cannot be had (a nested yama-run or another
user-notify supervisor holds one: EBUSY; or the kernel lacks user-notify).

The supervisor is every sandboxed task's tracer (PTRACE_SEIZE of the program,
children auto-attached). A hooked call stops its caller with
PTRACE_EVENT_SECCOMP; C reads the call into the same struct yr_event a
notification gives (tracer.c), the same C fast path and the same Python
handlers decide, into a context without a listener that keeps their reply
(notify.c, deferred mode), and C applies it: CONTINUE resumes the call; a
result or an errno skips it (syscall number -1) with that return value; an fd
is passed into the caller (socketpair + SCM_RIGHTS, run in the stopped caller).
Modules cannot tell the two backends apart.

Everything else is what a debugger must do so that programs behave as without
it: signals are delivered, group-stops kept (PTRACE_LISTEN), exit statuses
untouched. The price: a traced task cannot be traced by anyone else, so
debuggers inside the sandbox get EPERM from the kernel.

python-ptrace (GPL-2.0, the optional extra yama-run[ptrace]) makes the ptrace
requests; only its low-level binding is used."""
from __future__ import annotations

import errno
import os
import signal
import threading
import traceback
import warnings

with warnings.catch_warnings():        # it warns on import under Python 3.12+
    warnings.simplefilter("ignore")
    from ptrace.binding import func as _pt
    from ptrace.error import PtraceError

from ._yama import ffi, lib
from .lifetime import EXIT_SETUP, FRONT_GONE, exit_status, forwarded, kill_quietly
from .supervisor import SetupError, kernel_at_least
from .spawn import say_if_too_many_groups

PTRACE_SEIZE = 0x4206
PTRACE_LISTEN = 0x4208
PTRACE_EVENT_STOP = 128
OPTIONS = (_pt.PTRACE_O_TRACESYSGOOD      # syscall stops (fd injection) tell themselves apart
           | 0x80                          # PTRACE_O_TRACESECCOMP
           | _pt.PTRACE_O_TRACEFORK | _pt.PTRACE_O_TRACEVFORK | _pt.PTRACE_O_TRACECLONE
           | _pt.PTRACE_O_TRACEEXEC
           | 0x100000)                     # PTRACE_O_EXITKILL: we die, they die
STOP_SIGNALS = {signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU}
# The tracer thread wakes the main thread with this when it is done. Not
# SIGCHLD: every ptrace-stop sends one, and waking on each would cost a
# context switch per hooked call. Not a realtime signal: pthread_kill of one
# fails (EAGAIN) once the user's RLIMIT_SIGPENDING is used up, which a
# program of the user can do, and the tracer thread died of it, yama-run
# asleep for ever; a non-realtime one is set pending whatever that allowance.
# (Nor the C side's YR_WAKE_SIG, which the tracer thread must not block.)
WAKE = signal.SIGPWR

LIMIT = ("debuggers inside the sandbox cannot attach (the supervisor is every "
         "process's tracer; PTRACE_ATTACH, SEIZE and TRACEME get EPERM)")


def run(sup, argv: list[str], env: dict[str, str], bpf: bytes) -> int:
    """Run argv under sup's chain, traced. bpf: the filter built with TRACED."""
    sup.audit.say(f"backend: ptrace; {LIMIT}")
    say_if_too_many_groups()
    if not kernel_at_least(5, 3):
        raise SetupError("the ptrace backend needs Linux 5.3 (PTRACE_GET_SYSCALL_INFO)")
    if lib.yr_set_subreaper() < 0:
        raise SetupError("cannot become a child subreaper")
    signal.pthread_sigmask(signal.SIG_BLOCK, forwarded() + (signal.SIGCHLD, WAKE))
    tracer = Tracer(sup)
    pid, go_fd, status_fd = sup._spawn(argv, env, bpf, lib.YR_SPAWN_TRACED)
    sup.shield.harden_supervisor()   # as the notify backend's: out of the program's reach
    tracer.main_pid = pid
    thread = threading.Thread(target=tracer.serve, args=(go_fd,), name="yama-run-ptrace",
                              daemon=True)
    thread.start()
    try:
        tracer.attached.wait()
        if tracer.attach_error:
            os.close(status_fd)
            hint = (" (it has a tracer already, such as an outer yama-run with the ptrace "
                    "backend, or a policy forbids tracing it)"
                    if tracer.attach_error == errno.EPERM else "")
            raise SetupError(f"cannot trace the program: PTRACE_SEIZE: "
                             f"{os.strerror(tracer.attach_error)}{hint}")
        sup.started(pid)
        failure = sup._exec_result(status_fd)
        _until_done(tracer, sup.link)
    finally:
        thread.join()
        sup.stop_control()                      # no live change into a freed context
        lib.yr_ctx_free(sup.ctx)
        sup.ctx = ffi.NULL
    if failure is not None:
        return failure
    return tracer.status if tracer.status is not None else EXIT_SETUP


def _until_done(tracer, link) -> None:
    """Until the tracer has seen the last task go: the main program's status
    to the front as soon as the tracer has it (it wakes us), and the program
    killed if the front was (FRONT_GONE), as the notify backend's reaper."""
    wanted = (WAKE, FRONT_GONE)
    reported = False
    while not tracer.done.is_set():
        info = signal.sigwaitinfo(wanted)
        if tracer.status is not None and not reported and link is not None:
            reported = True
            link.main_exited(tracer.status)
        if info.si_signo == FRONT_GONE and tracer.status is None:
            kill_quietly(tracer.main_pid, signal.SIGKILL)


def _ignore_gone(call, *args) -> None:
    """A ptrace request on a task that may have been killed meanwhile."""
    try:
        call(*args)
    except PtraceError as exc:
        if exc.errno != errno.ESRCH:
            raise


class Tracer:
    """The debugger loop. One thread makes every ptrace request (ptrace is
    per tracer thread) and every wait (so stops are never taken by another)."""

    def __init__(self, sup):
        self.sup = sup
        self.main_pid = -1
        self.status: int | None = None   # the main program's (lifetime.exit_status)
        self.attached = threading.Event()
        self.attach_error = 0
        self.done = threading.Event()
        self._waker = threading.get_ident()     # the main thread, in _forward_signals
        self.ev = ffi.new("struct yr_event *")
        self.status_out = ffi.new("int *")
        self.broken_tid = ffi.new("pid_t *")
        ctx = lib.yr_ctx_new(-1)                # deferred: replies kept, not sent
        if ctx == ffi.NULL:
            raise SetupError("cannot allocate the notification context")
        sup.load_tables(ctx, sup.hooks())
        sup.ctx = ctx

    def serve(self, go_fd: int) -> None:
        try:
            try:
                _pt.ptrace(PTRACE_SEIZE, self.main_pid, 0, OPTIONS)
            except PtraceError as exc:
                self.attach_error = exc.errno or errno.EPERM
            lib.yr_spawn_release(go_fd, 0 if self.attach_error else 1)
            self.attached.set()
            self._loop()
        except Exception:
            self._fail_closed("the tracer failed", trace=traceback.format_exc())
        finally:
            self.attached.set()
            self.done.set()
            signal.pthread_kill(self._waker, WAKE)

    def _loop(self) -> None:
        """C waits and settles what it can (tracer.c, yr_trace_next); up here
        come the calls a module decides and every other stop or exit."""
        ev, status = self.ev, self.status_out
        while True:
            rc = lib.yr_trace_next(self.sup.ctx, ev, status)
            self._say_broken()
            if rc == 0:
                return                          # no task left: traced or child
            if rc == lib.YR_TRACE_DECIDE:
                self._decide(ev)
            elif rc == lib.YR_TRACE_STATUS:
                self._on_status(ev.tid, status[0])
            else:
                self._fail_closed(f"tracing {ev.tid} failed: {os.strerror(-rc)}", ev.tid)

    def _on_status(self, tid: int, status: int) -> None:
        if not os.WIFSTOPPED(status):           # exited or killed
            if tid == self.main_pid and self.status is None:
                self.status = exit_status(status)
                signal.pthread_kill(self._waker, WAKE)  # its status to the front now
            return
        sig, event = os.WSTOPSIG(status), status >> 16
        if event == PTRACE_EVENT_STOP and sig in STOP_SIGNALS:
            # A group-stop: stay stopped as without us, and hear of SIGCONT.
            _ignore_gone(_pt.ptrace, PTRACE_LISTEN, tid, 0, 0)
        elif event or sig == signal.SIGTRAP | 0x80:
            # fork, vfork, clone, exec; a new task's first stop; a stray syscall stop
            _ignore_gone(_pt.ptrace_cont, tid, 0)
        else:
            _ignore_gone(_pt.ptrace_cont, tid, sig)    # a signal: deliver it

    def _decide(self, ev) -> None:
        """The chain's call, as the notify backend's _serve makes it."""
        try:
            self.sup._handle(ev)
        except Exception:
            self.sup.call_failed(ev, traceback.format_exc())
            lib.yr_reply(self.sup.ctx, ev.id, 0, errno.EPERM)
        rc = lib.yr_trace_answer(self.sup.ctx, ev.tid, self.status_out)
        self._say_broken()
        if rc == 1:                             # died while an fd was passed in
            self._on_status(ev.tid, self.status_out[0])
        elif rc < 0:
            self._fail_closed(f"cannot answer the call of {ev.tid}: {os.strerror(-rc)}",
                              ev.tid)

    def _say_broken(self) -> None:
        """A process C killed while it passed a descriptor in (tracer.c,
        broken): said, or its program ended as 137 with nothing on stderr."""
        tid = self.broken_tid
        why = lib.yr_trace_broken(self.sup.ctx, tid)
        if why != ffi.NULL:
            what = f"passing a descriptor to task {tid[0]}: {ffi.string(why).decode()}"
            self.sup.audit.internal_error("the ptrace backend", f"{what}; its process killed",
                                          always=True)

    def _fail_closed(self, why: str, tid: int = 0, trace: str = "") -> None:
        self.sup.audit.internal_error(f"{why}; killing the sandboxed program", trace or why,
                                      always=True)
        for pid in {self.main_pid, tid} - {0}:
            try:
                os.kill(pid, signal.SIGKILL)       # the task's whole process
            except ProcessLookupError:
                pass
