"""Calls that name another task in ptrace's sense: the ptrace family,
perf_event_open on another task, and prctl(PR_SET_PTRACER).

ptrace and process_vm_* name their target by an integer pid and are decided
on it, then continued. pidfd_getfd names it through a descriptor, which
another thread could swap after a check, and perf_event_open's mode (attr.
sigtrap) lies in the caller's memory, which another thread could rewrite:
both are performed here, on what was read once, with exactly the caller's
authority (csrc/creds.c yr_syscall_as), after the kernel's own rule was
judged for the caller (procfs.kernel_ptrace_refusal): the supervisor holds
more than the caller (root, or the owner of the sandbox's user namespace).
PR_SET_PTRACER is emulated (this kernel has no Yama to answer it); the tasks
a declaration names are pinned by the task watch (sandbox/taskwatch.py),
which tells the chain (hook task_free) the moment one is gone."""
from __future__ import annotations

import errno
import functools
import os
import signal
import struct

from . import routes
from . import procfs
from ._yama import ffi, lib
from .requests import PTRACER_ANY, PtraceAccess, PtraceTraceme, Sandbox, SetPtracer, \
    TaskAct, TaskFree
from .sysargs import int_arg, pidfd_target, read_caller, read_caller_string, take_fd
from .taskwatch import PIDFD_THREAD, TaskWatch

PTRACE_O_MASK = 0x003000FF
SYS_PIDFD_GETFD, SYS_PERF_EVENT_OPEN = 438, 298   # x86-64: the supervisor's own ABI
PERF_FLAG_PID_CGROUP, PERF_FLAG_FD_CLOEXEC = 1 << 2, 1 << 3
PERF_FLAG_ALL = 0xF                                  # with FD_NO_GROUP, FD_OUTPUT
PERF_ATTR_SIZE_VER0, PERF_ATTR_SIZE_AT, PERF_ATTR_FLAGS_AT, PERF_SIGTRAP_BIT = 64, 4, 40, 37
PAGE_SIZE = 4096
# The uprobe and kprobe PMUs: attr.config1 (uprobe_path, kprobe_func) is a
# pointer, read by the kernel in the acting thread's memory, at most this many
# bytes (PATH_MAX; KSYM_NAME_LEN); no NUL in them is E2BIG.
PMU_DIR = "/sys/bus/event_source/devices"
PROBE_PMUS = {"uprobe": 4096, "kprobe": 512}
PERF_TYPE_MAX = 6                      # the fixed types; a PMU registered at run time is above
PERF_ATTR_CONFIG1_AT = 56
UNREADABLE = 0xFFFFFFFFFFFFF000        # no user address: the kernel's own EFAULT, at its point


@functools.cache
def _probe_pmus() -> dict[int, str] | None:
    """type -> "uprobe" or "kprobe", read once (both are built in and
    registered at boot: their numbers never change); a PMU absent from a
    readable sysfs is not there. None: sysfs unreadable, the types unknown."""
    found = {}
    for name in PROBE_PMUS:
        try:
            with open(f"{PMU_DIR}/{name}/type", "rb") as f:
                found[int(f.read())] = name
        except FileNotFoundError:
            if not os.path.isdir(PMU_DIR):
                return None
        except (OSError, ValueError):
            return None
    return found


def _alive(pidfd: int) -> bool:
    """Is the task of pidfd still there (its number still its own)?"""
    try:
        signal.pidfd_send_signal(pidfd, 0)
    except PermissionError:
        return True
    except ProcessLookupError:
        return False
    return True


def _pin(target: int, tgid: int) -> int | None:
    """A pidfd of target, once it is known to be the task of tgid that was
    judged (its number not reused in between), or None: gone."""
    try:
        pin = os.pidfd_open(target, PIDFD_THREAD)
    except OSError:
        return None
    if procfs.tgid_of(target) == tgid and _alive(pin):
        return pin
    os.close(pin)
    return None


def _shares_mm(caller, target: int) -> bool:
    """Does target share the caller's mm (clone(CLONE_VM) without
    CLONE_THREAD: vfork, posix_spawn)? mm_access asks no ptrace question of
    such a task, Yama's included, so process_vm_* of it goes on to the
    kernel. The kcmp is made of the task that held the number before and
    after it (csrc/procinfo.c yr_shares_mm), never of one that took the
    number in between. A sharer that execs after it is met by the kernel's
    own rule alone in the continued call: that grants nothing, since the
    caller could write the sharer's code, and so chose what it would run."""
    return lib.yr_shares_mm(caller.tid, target, ffi.new("unsigned long long *")) == 1


def _size_field(ev) -> int:
    """Where perf_event_open's attr.size is in the caller's memory."""
    return (ev.args[0] + PERF_ATTR_SIZE_AT) & 0xFFFFFFFFFFFFFFFF


def _monotonic_ns(deadline: float) -> int:
    """A time.monotonic() deadline for C (CLOCK_MONOTONIC, ns); inf: never."""
    return (1 << 63) - 1 if deadline == float("inf") else int(deadline * 1e9)


class TaskCalls:
    def __init__(self, sup):
        self.sup = sup
        self.sandbox = Sandbox(sup)
        self.tasks = TaskWatch(self._task_freed,
                               lambda text: self.sup.audit.say(f"internal error: {text}"))
        if "task_free" in sup.chain.hooks():
            self.tasks.watch_execs()
        sup.audit.silent_source = lib.yr_ptrace_fast_take_silent
        self.load_fast_rule(sup.chain, sup.audit)

    @staticmethod
    def load_fast_rule(chain, audit) -> None:
        """Let C settle what the ptrace module alone decides (csrc/ptrace_fast.c):
        ATTACH-mode calls by its scope when no other module judges them (first
        deny wins and says who: the others must be asked), and
        PR_SET_PTRACER 0 when it alone hooks prctl and emulated calls are not
        recorded. Never permissive or learning (every objection is recorded
        there). At start and in every live change, before it is acknowledged."""
        if chain.permissive or os.environ.get("YAMA_RUN_NO_FAST_PATH") == "1":
            lib.yr_ptrace_fast_rule(0)
            return
        def judges(hook):
            return [m for m in chain.modules if hook in m.hooks()]
        word = 0
        access = judges("ptrace_access_check")
        if len(access) == 1 and access[0].name == "ptrace" and access[0].scope in (1, 2, 3):
            word |= lib.YR_PTRACE_FAST_ON | access[0].scope
        if [m.name for m in judges("task_prctl")] == ["ptrace"] and not audit.records_emulated():
            word |= lib.YR_PTRACE_FAST_PRCTL
        lib.yr_ptrace_fast_rule(word)

    def handlers(self) -> dict:
        """syscall name -> handler (names from the registry, csrc/syscalls.def)."""
        return {"ptrace": self.on_ptrace, "prctl": self.on_prctl,
                "process_vm_readv": self.on_process_vm, "process_vm_writev": self.on_process_vm,
                "pidfd_getfd": self.on_pidfd_getfd, "perf_event_open": self.on_perf_event_open}

    def _reply(self, ev, err: int) -> None:
        lib.yr_reply(self.sup.ctx, ev.id, 0, err)

    def _continue(self, ev) -> None:
        if lib.yr_id_valid(self.sup.ctx, ev.id):
            lib.yr_reply_continue(self.sup.ctx, ev.id)

    def _deny_or_continue(self, ev, hook: str, request, attaches: bool = False) -> None:
        """attaches: a tracer may result (an attach, seize or traceme)."""
        deny = self.sup.chain.walk(hook, request)
        if deny is not None:
            self._reply(ev, deny.errno)
            return
        if attaches:
            lib.yr_ptrace_fast_tracing()    # before the kernel can make a tracer
        self._continue(ev)

    def _target(self, ev, caller, pid: int, what: str, err: int = errno.EPERM):
        """(tid, tgid) of ours that the caller names, or None once answered:
        ESRCH for no such task (a pid that appears after our look-up is never
        reached unchecked), err for one of yama-run's own processes."""
        target = procfs.caller_pid(caller.tid, pid) if pid > 0 else None
        tgid = procfs.tgid_of(target) if target else None
        if tgid is None:
            self._reply(ev, errno.ESRCH)
            return None
        if self.sandbox.protected(tgid):
            self.sup.audit.say(f"refused {what} of the supervisor by {caller.describe()}")
            self._reply(ev, err)
            return None
        return target, tgid

    # -- ptrace and process_vm_* ----------------------------------------------------

    def _access(self, ev, caller, syscall: str, operation: str, pid: int) -> None:
        """An ATTACH-mode access to pid, decided on the integer pid."""
        found = self._target(ev, caller, pid, operation)
        if found is None:
            return
        target, tgid = found
        if tgid == caller.tgid:      # own thread group: the kernel decides alone
            self._continue(ev)
            return
        if syscall != "ptrace" and not procfs.has_mm(target):
            # mm_access: a task without an mm (a zombie, a kernel thread) is
            # ESRCH before any permission check, an LSM's included
            self._reply(ev, errno.ESRCH)
            return
        if syscall != "ptrace" and _shares_mm(caller, target):
            self._continue(ev)
            return
        request = PtraceAccess(caller, syscall, operation, target, tgid, sandbox=self.sandbox)
        self._deny_or_continue(ev, "ptrace_access_check", request, attaches=syscall == "ptrace")
        # C settles the next denials alone while nobody would read them
        lib.yr_ptrace_fast_quiet(_monotonic_ns(self.sup.audit.unread_until()))

    def on_ptrace(self, ev, caller) -> None:
        op = ev.args[0]
        if op == routes.PTRACE_TRACEME:
            parent = procfs.ppid_of(caller.tgid) or 0
            self._deny_or_continue(ev, "ptrace_traceme", PtraceTraceme(caller, parent),
                                   attaches=True)
        elif op == routes.PTRACE_SEIZE and (ev.args[2] or ev.args[3] & ~PTRACE_O_MASK):
            # The kernel refuses these (ESRCH, else EIO) before any permission
            # check, on integers only: it may answer itself.
            lib.yr_ptrace_fast_tracing()    # (it never attaches: counted all the same)
            self._continue(ev)
        elif op in (routes.PTRACE_ATTACH, routes.PTRACE_SEIZE):
            name = "PTRACE_ATTACH" if op == routes.PTRACE_ATTACH else "PTRACE_SEIZE"
            self._access(ev, caller, "ptrace", name, int_arg(ev.args[1]))
        else:   # not routed by our filter: fail closed
            self._reply(ev, errno.EPERM)

    def on_process_vm(self, ev, caller) -> None:
        name = ("process_vm_readv" if ev.sys == lib.YR_SYS_PROCESS_VM_READV
                else "process_vm_writev")
        self._access(ev, caller, name, name, int_arg(ev.args[0]))

    # -- PR_SET_PTRACER ---------------------------------------------------------------

    def on_prctl(self, ev, caller) -> None:
        """PR_SET_PTRACER, emulated: this kernel has no Yama to answer it."""
        arg2 = ev.args[1]
        tracer = process = None
        if arg2:
            lib.yr_ptrace_fast_declared()   # before any relation can be recorded
        if arg2 in (0xFFFFFFFFFFFFFFFF, 0xFFFFFFFF) or int_arg(arg2) == -1:
            tracer = PTRACER_ANY
        elif arg2:
            if not self.tasks.room():
                self._out_of_room(ev, caller)
                return
            tracer = self._task(caller, int_arg(arg2))
            if tracer is None:
                self._reply(ev, errno.EINVAL)   # no such pid (find_get_task_by_vpid)
                return
        try:
            if tracer is not None:
                if not self.tasks.room(1):
                    self._out_of_room(ev, caller)
                    return
                process = self.tasks.leader(caller.tgid)
                if process is None:
                    self._reply(ev, errno.ESRCH)
                    return
            request = SetPtracer(caller, tracer, process)
            deny = self.sup.chain.walk("task_prctl", request)
            if not deny:
                self.sup.audit.emulated(request)
            self._reply(ev, deny.errno if deny else 0)
        finally:       # a module keeps what it records with hold(); ours go
            for task in (tracer, process):
                if task is not None and task != PTRACER_ANY:
                    task.release()
            self.tasks.flush()

    def _out_of_room(self, ev, caller) -> None:
        """The kernel's answer when it cannot allocate a relation
        (yama_ptracer_add): for this caller only."""
        self.sup.audit.say(f"refused PR_SET_PTRACER by {caller.describe()}: the sandbox holds "
                           f"as many tasks for declarations as it may ({self.tasks.held()})")
        self._reply(ev, errno.ENOMEM)

    def _task(self, caller, pid: int):
        """The task the caller names (a thread or a leader), pinned."""
        ours = procfs.caller_pid(caller.tid, pid) if pid > 0 else None
        tgid = procfs.tgid_of(ours) if ours else None
        return self.tasks.thread(ours, tgid) if tgid else None

    def _task_freed(self, task) -> None:
        """From the task watch's thread: Yama's task_free."""
        self.sup.chain.walk("task_free", TaskFree(task))

    # -- pidfd_getfd ----------------------------------------------------------------------

    def on_pidfd_getfd(self, ev, caller) -> None:
        """Emulated: the pidfd is an fd the caller's other threads could swap
        after our check, so we take the object once and act on that."""
        pidfd, target_fd, flags = int_arg(ev.args[0]), int_arg(ev.args[1]), ev.args[2] & 0xFFFFFFFF
        if flags:
            self._reply(ev, errno.EINVAL)
            return
        copy, err = take_fd(caller, pidfd)
        if err:
            self._reply(ev, err)
            return
        try:
            target = pidfd_target(copy)
            if target is None:
                self._reply(ev, errno.EBADF)    # not a pidfd
                return
            tgid = procfs.tgid_of(target) if target > 0 else None
            if tgid is None:
                self._reply(ev, errno.ESRCH)
                return
            if self.sandbox.protected(tgid):    # never yama-run's descriptors
                self.sup.audit.say(f"refused pidfd_getfd of the supervisor by "
                                   f"{caller.describe()}")
                self._reply(ev, errno.EPERM)
                return
            if tgid != caller.tgid:    # own thread group: no check at all
                refusal = procfs.kernel_ptrace_refusal(caller, target,
                                                       procfs.PTRACE_MODE_REALCREDS, errno.EPERM)
                if refusal:
                    self._reply(ev, refusal)         # the kernel's own rule, before any LSM
                    return
                request = PtraceAccess(caller, "pidfd_getfd", "pidfd_getfd", target, tgid,
                                       sandbox=self.sandbox)
                deny = self.sup.chain.walk("ptrace_access_check", request)
                if deny is not None:
                    self._reply(ev, deny.errno)
                    return
            args = ffi.new("uint64_t[6]", [copy, target_fd & 0xFFFFFFFF, 0, 0, 0, 0])
            fd = lib.yr_syscall_as(caller.creds, SYS_PIDFD_GETFD, args)
            if fd >= 0 and tgid != caller.tgid:
                # The rule again, the descriptor in hand: a target that made
                # itself non-dumpable or moved into another user namespace
                # since it was judged keeps it (the kernel judges at the call;
                # ours, acting with more authority, does not refuse it).
                refusal = procfs.kernel_ptrace_refusal(caller, target,
                                                       procfs.PTRACE_MODE_REALCREDS, errno.EPERM)
                if refusal:
                    os.close(fd)
                    self._reply(ev, refusal)
                    return
            self._install(ev, fd, True)
        finally:
            os.close(copy)

    def _install(self, ev, fd: int, cloexec: bool) -> None:
        """A descriptor we opened as the caller becomes its call's result."""
        if fd < 0:
            self._reply(ev, -fd)
            return
        err = lib.yr_reply_addfd(self.sup.ctx, ev.id, fd, os.O_CLOEXEC if cloexec else 0)
        if err < 0:                     # (fd is closed by it, before the caller is woken)
            self._reply(ev, -err)

    # -- perf_event_open on another task ---------------------------------------------------

    def on_perf_event_open(self, ev, caller) -> None:
        """perf_event_open(attr, pid, cpu, group_fd, flags) on another task.
        kernel/events/core.c perf_check_permission: a READ-mode ptrace check,
        ATTACH when attr.sigtrap is set (a signal changes the target) unless
        the caller has CAP_PERFMON and CAP_KILL over it. Containment judges
        the target whatever the mode. The attr is read first, as the kernel
        copies it before it looks at the task."""
        pid, flags = int_arg(ev.args[1]), ev.args[4] & 0xFFFFFFFFFFFFFFFF
        if pid <= 0 or flags & (PERF_FLAG_PID_CGROUP | ~PERF_FLAG_ALL):
            # a cpu, a cgroup, or the kernel's EINVAL (unknown flags: before
            # the attr is read): no task, and nothing of the caller's memory
            self._continue(ev)
            return
        attr = self._read_attr(ev, caller)
        if attr is None:
            return                      # answered: the kernel's EFAULT or E2BIG
        found = self._target(ev, caller, pid, "perf_event_open", errno.EACCES)
        if found is None:
            return
        target, tgid = found
        if tgid == caller.tgid:
            self._continue(ev)          # its own: ptrace_may_access allows it whatever the mode
            return
        pin = _pin(target, tgid)
        if pin is None:
            self._reply(ev, errno.ESRCH)
            return
        try:
            self._perf_judged(ev, caller, attr, target, tgid, pin)
        finally:
            os.close(pin)

    def _perf_judged(self, ev, caller, attr: bytearray, target: int, tgid: int,
                     pin: int) -> None:
        """perf_event_open on target (pinned by pin), judged, then opened."""
        request = TaskAct(caller, "perf_event_open", "perf_event_open", target, tgid,
                          hook="perf_event_open", sandbox=self.sandbox, deny_errno=errno.EACCES)
        deny = self.sup.chain.walk("perf_event_open", request)
        if deny is not None:
            self._reply(ev, deny.errno)
            return
        if not self.sup.chain.hooks() & {"ptrace_access_check"}:
            self._continue(ev)          # no ATTACH rule: the attr decides nothing of ours
            return
        flag_word = struct.unpack_from("<Q", attr, PERF_ATTR_FLAGS_AT)[0]
        sigtrap = bool(flag_word >> PERF_SIGTRAP_BIT & 1)
        exempt = self._perfmon_capable(caller) and (
            not sigtrap or procfs.capable_over(caller, target, procfs.CAP_KILL))
        if not exempt:
            refusal = procfs.kernel_ptrace_refusal(caller, target,
                                                   procfs.PTRACE_MODE_REALCREDS, errno.EACCES)
            if refusal:
                self._reply(ev, refusal)
                return
            if sigtrap:
                access = PtraceAccess(caller, "perf_event_open", "perf_event_open sigtrap",
                                      target, tgid, deny_errno=errno.EACCES,
                                      sandbox=self.sandbox)
                deny = self.sup.chain.walk("ptrace_access_check", access)
                if deny is not None:
                    self._reply(ev, deny.errno)
                    return
        self._perf_open(ev, caller, attr, target, pin, rejudge=not exempt)

    def _read_attr(self, ev, caller) -> bytearray | None:
        """The attr, read once as perf_copy_attr reads it: its size field
        first (0 is the first version's), then that many bytes. None once
        answered: EFAULT for memory the caller cannot read; a size the kernel
        refuses is refused by the kernel itself on our copy (E2BIG, its own
        size written back into attr.size). Never continued: the kernel would
        read the caller's memory again, where another thread may have
        written a valid size (or mapped the page) since, and the call would
        then go on with no check of ours at all."""
        addr = ev.args[0] & 0xFFFFFFFFFFFFFFFF
        field = ffi.new("uint32_t *")
        if not read_caller(caller, _size_field(ev), field, 4):
            self._reply(ev, errno.EFAULT)
            return None
        size = field[0] or PERF_ATTR_SIZE_VER0
        if not PERF_ATTR_SIZE_VER0 <= size <= PAGE_SIZE:
            head = bytearray(PERF_ATTR_SIZE_VER0)
            struct.pack_into("<I", head, PERF_ATTR_SIZE_AT, size)
            # no task, cpu or group: the kernel's answer comes before it looks at them
            fd = self._perf_syscall(ev, caller, head, -1, -1, -1)
            self._install(ev, fd, bool(ev.args[4] & PERF_FLAG_FD_CLOEXEC))
            return None
        raw = ffi.new("char[]", size)
        if not read_caller(caller, addr, raw, size):
            self._reply(ev, errno.EFAULT)
            return None
        return bytearray(ffi.buffer(raw))

    @staticmethod
    def _perfmon_capable(caller) -> bool:
        """perfmon_capable(): CAP_PERFMON or CAP_SYS_ADMIN in the initial user
        namespace, taken here as the supervisor's."""
        return caller.userns == procfs.OWN_USERNS and (
            caller.has_cap(procfs.CAP_PERFMON) or caller.has_cap(procfs.CAP_SYS_ADMIN))

    def _perf_open(self, ev, caller, attr: bytearray, target: int, pin: int,
                   rejudge: bool) -> None:
        """The event opened on our copy of attr, as the caller, for target (a
        pid of ours), with the caller's group leader fd taken once. The
        kernel looks the number up again, in a thread of ours, to which it
        lets any task of our own thread group (same_thread_group): the
        target still alive after the call (pin) proves the number was its
        all along, never a thread of the supervisor's that took it since.
        rejudge: the kernel's rule again, the event in hand (a target that
        exec'd a program it may not read, or moved, since it was judged:
        ours, acting with more authority, does not refuse it)."""
        group_fd = int_arg(ev.args[3])
        group = -1
        if group_fd != -1:
            group, err = take_fd(caller, group_fd)
            if err:
                self._reply(ev, err)
                return
        probed = -1
        try:
            probe = self._own_probe_string(ev, caller, attr)
            if probe is None:
                return                  # answered
            copy, probed = probe        # (copy: alive until the kernel has read it)
            fd = self._perf_syscall(ev, caller, attr, target, int_arg(ev.args[2]), group)
            if fd >= 0 and not _alive(pin):
                os.close(fd)
                fd = -errno.ESRCH
            if fd >= 0 and rejudge and (refusal := procfs.kernel_ptrace_refusal(
                    caller, target, procfs.PTRACE_MODE_REALCREDS, errno.EACCES)):
                os.close(fd)
                fd = -refusal
            self._install(ev, fd, bool(ev.args[4] & PERF_FLAG_FD_CLOEXEC))
        finally:
            for held in (group, probed):
                if held >= 0:
                    os.close(held)

    def _own_probe_string(self, ev, caller, attr: bytearray) -> tuple[object, int] | None:
        """The uprobe and kprobe PMUs' attr.config1 points to a string (a
        path, a kernel symbol) in the caller's memory, which the kernel reads
        in the acting thread's: ours. It is read here once, as the kernel
        reads it, and config1 pointed at our copy; one the kernel would find
        unreadable at a kernel address, so that its EFAULT (like its E2BIG)
        comes at its own point, after its checks. Read once: another thread
        that rewrites it after changes nothing, nothing of ours decides on it
        and the kernel reads only our copy. A path names what the caller's
        would: from its cwd or root, taken now (a chdir by the caller after
        gives what the call would have given a moment earlier), walked here
        (_probe_path_held).
        (copy, held): our copy, to keep alive until the call returns (None:
        config1 untouched), and the object its path names, held (-1: none),
        ours to close; None once answered."""
        kind = self._probe_kind(ev, caller, attr)
        if kind is False:
            return None
        addr = struct.unpack_from("<Q", attr, PERF_ATTR_CONFIG1_AT)[0]
        if kind is None or not addr:    # uprobe: EINVAL; kprobe: kprobe_addr (config2)
            return None, -1
        limit = PROBE_PMUS[kind]
        text = read_caller_string(caller, addr, limit)
        if text is None:
            struct.pack_into("<Q", attr, PERF_ATTR_CONFIG1_AT, UNREADABLE)
            return None, -1
        held = -1
        if kind == "uprobe" and 0 < len(text) < limit:
            held = self._probe_path_held(ev, caller, text)
            if held < 0:
                self._reply(ev, -held)
                return None
            # The kernel's kern_path, in the acting thread (a thread of ours:
            # yr_syscall_as, which shares our descriptors), follows this
            # magic link to the object held, and walks nothing else.
            text = b"/proc/thread-self/fd/%d" % held
        copy = ffi.new("char[]", text + b"\0")
        struct.pack_into("<Q", attr, PERF_ATTR_CONFIG1_AT, int(ffi.cast("uintptr_t", copy)))
        return copy, held

    def _probe_path_held(self, ev, caller, path: bytes) -> int:
        """The object a uprobe path names for the caller, held O_PATH, or
        -errno: walked by the path engine as the caller's openat(AT_FDCWD,
        path, O_PATH) is (yr_walk_hold: from its cwd or root, symlinks
        followed as kern_path(LOOKUP_FOLLOW) follows them, a trailing one in
        a sticky directory judged as any follow, /proc/self and
        /proc/thread-self the caller's, every /proc entry met judged by the
        gate), the chain asked at its hook points (PathCalls.on_walk). An
        openat2 of ours as the caller took /proc/self for the supervisor,
        whose descriptors, threads and mappings the answers then told apart
        (found by a review)."""
        name = ffi.new("char[]", path)
        try:
            if not lib.yr_walk_hold(self.sup.ctx, ev, name):
                self.sup.paths.on_walk(ev, caller)  # a hook point: the chain, then C goes on
        except BaseException:
            held = lib.yr_walk_taken(self.sup.ctx)  # taken by no one: closed, not kept
            if held >= 0:
                os.close(held)
            raise
        return lib.yr_walk_taken(self.sup.ctx)

    def _probe_kind(self, ev, caller, attr: bytearray):
        """"uprobe", "kprobe", None (another PMU), or False once answered:
        with the types unknown (sysfs unreadable), a run-time type on
        another task is refused, EACCES, as perf_event_open refuses an
        access: its config1 may be a pointer that would be read in our
        memory, or a value that rewriting would change."""
        pmus = _probe_pmus()
        kind = struct.unpack_from("<I", attr, 0)[0]
        if pmus is None and kind >= PERF_TYPE_MAX:
            self.sup.audit.say(f"refused perf_event_open of PMU type {kind} on another task by "
                               f"{caller.describe()}: the uprobe and kprobe types are unknown "
                               f"({PMU_DIR} unreadable)")
            self._reply(ev, errno.EACCES)
            return False
        return (pmus or {}).get(kind)

    def _perf_syscall(self, ev, caller, attr: bytearray, target: int, cpu: int,
                      group: int) -> int:
        """perf_event_open on our copy of attr, as the caller, with its flags:
        the fd or -errno. The kernel's E2BIG writes its own size into our
        copy; it is written back into the caller's attr.size, as the kernel's
        put_user (whose failure it ignores too)."""
        flags = ev.args[4] & 0xFFFFFFFF
        buf = ffi.from_buffer(attr)
        args = ffi.new("uint64_t[6]", [int(ffi.cast("uintptr_t", buf)),
                                       target & 0xFFFFFFFFFFFFFFFF, cpu & 0xFFFFFFFFFFFFFFFF,
                                       group & 0xFFFFFFFFFFFFFFFF,
                                       flags | PERF_FLAG_FD_CLOEXEC, 0])
        fd = lib.yr_syscall_as(caller.creds, SYS_PERF_EVENT_OPEN, args)
        if fd == -errno.E2BIG:
            size_field = ffi.from_buffer(bytes(attr[PERF_ATTR_SIZE_AT:PERF_ATTR_SIZE_AT + 4]))
            lib.yr_write_mem(self.sup.ctx, ev.id, caller.tid, _size_field(ev), size_field, 4)
        return fd
