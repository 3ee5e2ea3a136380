"""Calls that signal or act on another process by pid: the guard of yama-run's
own processes, and the place containment is asked.

For each call the target is found as the kernel finds it (the caller's pid,
in the caller's pid namespace), then:

  * a protected yama-run process (sup.protected_pids: the supervisor, and the
    front process once there is one) is refused, in every mode, with a line
    that says so ("it would reach the supervisor");
  * any other target is put to the chain at the kernel's LSM hook of the call
    (task_kill, task_prlimit, task_setnice, task_setioprio, task_setscheduler,
    task_movememory): the contain module refuses targets outside the sandbox
    when it is on; nothing else hooks them;
  * otherwise the call goes on.

PTRACE_MODE_READ accesses that name a process without a /proc path (kcmp,
get_robust_list, a pidfd's namespaces, setns by pidfd) are routed while the
sandbox is contained, or has no Landlock domain: with the domain the kernel
refuses every one aimed outside (and at yama-run), and the call goes on at
once; without it they are judged here (the contain module's, when on).

A pid names a task only while it lives, and the program decides when its
children die and are reaped: a child kept a zombie through the check, then
reaped, its number taken again after the pid space wrapped, and the caller
kept off the CPU meanwhile (SCHED_IDLE) made a continued kill land, a second
later, on a thread the supervisor had just started (a FIFO open's worker),
and SIGKILL or SIGSTOP reached the supervisor (found by a review). So a
signal by pid to any task but the caller itself is sent here, through a
pidfd taken before the target is judged, as the caller (the receiver's
si_pid then names the supervisor); where Landlock's signal scope already
keeps every yama-run process out of reach, or the caller numbers pids in a
namespace of its own (ours are not in it), the kernel sends it. Other calls
decided on a pid are continued (after ID_VALID): their window is in
docs/design.md. A file owner named by pid (F_SETOWN and its kin) is a
signal route too: set here, with the target pinned the same way. A pidfd
can be swapped by another thread after a check, so pidfd_send_signal, process_madvise and process_mrelease are
performed here on the supervisor's own copy of it (taken from the calling
thread's table), as the caller; except where they name the caller itself:
PIDFD_SELF_* (read from no table), and process_madvise of its own process
(whose rule is the kernel's for its own mm), where a swap gains nothing
(_swaps_are_the_kernels): these go on to the kernel. Arguments
read from the caller's memory (F_SETOWN_EX's owner, process_madvise's iovecs)
are read once, and the call is made on that copy."""
from __future__ import annotations

import errno
import fcntl
import os
import re
import signal
import stat
import struct

from . import procfs
from ._yama import ffi, lib
from .requests import Sandbox, TaskAct
from .shield import tables_shared_by_threads_only
from .sysargs import (PIDFD_SELF, PIDFD_SELF_THREAD, int_arg, pidfd_target, read_caller,
                      take_fd)

PIDFD_SIGNAL_THREAD, PIDFD_SIGNAL_THREAD_GROUP, PIDFD_SIGNAL_PROCESS_GROUP = 1, 1 << 1, 1 << 2
PIDFD_THREAD = os.O_EXCL
AUDIT_ARCH_X86_64 = 0xC000003E       # linux/audit.h: a 64-bit caller's siginfo is ours
X32_SYSCALL_BIT = 0x40000000         # an x32 caller's siginfo is i386's (compat_siginfo)
COMPAT_SIGINFO_SIZE, SIGINFO_SIZE = 128, 128
SI_SIGIO, SI_TKILL = -5, -6
F_SETOWN, F_SETOWN_EX, F_SETFL = 8, 15, 4
FIOASYNC = 0x5452
TIOCGDEV = 0x80045432               # the terminal's own device number, as /proc's tty_nr
TIOCGPTN = 0x80045430               # a pty master's number: answered by masters only
SYS_FCNTL = 72
F_OWNER_TID, F_OWNER_PID, F_OWNER_PGRP = 0, 1, 2
NO_SUCH_PID = 0x7FFFFFFF            # above PID_MAX_LIMIT: the kernel finds no task by it
PRIO_PROCESS, PRIO_PGRP, PRIO_USER = 0, 1, 2
IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP, IOPRIO_WHO_USER = 1, 2, 3
UIO_MAXIOV = 1024
# Pins one group signal holds at a time: with the 16 receivers a sandbox may
# have stalled (each such call is marked stalled), 544 descriptors at most.
PIN_BATCH = 32
SYS_KILL, SYS_IOCTL, SYS_PROCESS_MADVISE, SYS_PROCESS_MRELEASE = 62, 16, 440, 448   # x86-64
KCMP_FILES = 2
PIDFD_GET_NAMESPACE = frozenset(0xFF00 | n for n in range(1, 11))     # _IO(0xFF, 1..10)
SCAN_ROUNDS = 8                     # listings of a setns caller's threads (table_shared)
RLIMITS = ("CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE", "MEMLOCK",
           "AS", "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME")


class Guard:
    def __init__(self, supervisor):
        self.sup = supervisor
        self.sandbox = Sandbox(supervisor)
        self.me = os.getpid()
        self.my_pgrp = os.getpgrp()

    def handlers(self) -> dict:
        """syscall name -> handler (names from the registry, csrc/syscalls.def)."""
        return {
            "kill": self.on_kill,
            "rt_sigqueueinfo": self.on_kill,
            "tkill": self.on_tkill,
            "tgkill": self.on_tgkill,
            "rt_tgsigqueueinfo": self.on_tgkill,
            "pidfd_send_signal": self.on_pidfd_send_signal,
            "fcntl": self.on_fcntl,
            "ioctl": self.on_ioctl,
            "prlimit64": self.on_prlimit,
            "setpriority": self.on_setpriority,
            "ioprio_set": self.on_ioprio_set,
            "sched_setaffinity": self.on_sched,
            "sched_setscheduler": self.on_sched,
            "sched_setparam": self.on_sched,
            "sched_setattr": self.on_sched,
            "migrate_pages": self.on_movememory,
            "move_pages": self.on_movememory,
            "process_madvise": self.on_process_madvise,
            "process_mrelease": self.on_process_mrelease,
            "kcmp": self.on_kcmp,
            "get_robust_list": self.on_get_robust_list,
            "setns": self.on_setns,
        }

    # -- answers -------------------------------------------------------------

    def _reply(self, ev, err: int, value: int = 0) -> None:
        lib.yr_reply(self.sup.ctx, ev.id, value, err)

    def _refuse(self, ev, caller, what: str, err: int = errno.EPERM) -> None:
        self.sup.audit.say(f"refused {what} by {caller.describe()}: it would reach the supervisor")
        self._reply(ev, err)

    def _refuse_unread(self, ev, caller, what: str, e: OSError) -> None:
        """A set of processes /proc could not tell (the supervisor out of
        descriptors: a review filled its table with group signals' pins)
        refuses the call: a member taken for "none", or for "not a member",
        let the kernel reach the supervisor. EPERM, the errno of each such
        call where the caller may not act on a member (ESRCH would say the
        set is empty, and it may not be)."""
        name = errno.errorcode.get(e.errno, str(e.errno))
        self.sup.audit.say(f"refused {what} by {caller.describe()} with EPERM: /proc could "
                           f"not be read ({name}), and it might reach the supervisor")
        self._reply(ev, errno.EPERM)

    def _pass(self, ev) -> None:
        if lib.yr_id_valid(self.sup.ctx, ev.id):
            lib.yr_reply_continue(self.sup.ctx, ev.id)

    def _protected(self, tgid: int | None) -> bool:
        return self.sandbox.protected(tgid)

    def _judge(self, ev, caller, hook: str, operation: str, target: int, tgid: int,
               err: int = errno.EPERM) -> bool:
        """The guard's and the chain's verdict on one target (a tid of ours).
        True: go on; False: refused (answered)."""
        if self._protected(tgid):
            self._refuse(ev, caller, f"{operation} of {target}", err)
            return False
        if tgid == caller.tgid:
            return True                 # its own process: inside, never protected
        request = TaskAct(caller, _name(ev), operation, target, tgid, hook=hook,
                          sandbox=self.sandbox, deny_errno=err)
        deny = self.sup.chain.walk(hook, request)
        if deny is not None:
            self._reply(ev, deny.errno)
            return False
        return True

    def _target(self, caller, pid: int) -> tuple[int, int] | None:
        """(tid, tgid) of ours for a pid the caller names; None: none."""
        ours = procfs.caller_pid(caller.tid, pid) if pid > 0 else None
        tgid = procfs.tgid_of(ours) if ours else None
        return (ours, tgid) if tgid else None

    def _by_pid(self, ev, caller, hook: str, operation: str, pid: int) -> None:
        """A call on one task named by pid (0: the caller itself)."""
        if pid == 0:
            self._pass(ev)
            return
        found = self._target(caller, pid)
        if found is None:
            self._reply(ev, errno.ESRCH)    # the kernel's answer; a later task is never reached
        elif self._judge(ev, caller, hook, operation, *found):
            self._pass(ev)

    # -- sets of processes: a group, a user's ------------------------------------

    def _members(self, caller, pgrp: int | None = None, uid: int | None = None) -> list[int]:
        """The processes of a group or of a real uid, in our numbers. An
        O(processes) walk of /proc, as the kernel's own for these calls, in
        C (the GIL let go), in a receiver marked costly first (docs/stall.md):
        in Python and unmarked, threads looping F_SETOWN(-pgrp), a group's
        pidfd_send_signal or setpriority(PRIO_PGRP) held every receiver, and
        a bystander's calls waited 400 ms each beside 3,000 processes (a
        review). Only a process that is gone is passed over; raises OSError
        when one could not be read (taken for "not a member", a set that
        held the supervisor was judged without it)."""
        lib.yr_pool_mark_costly_here()
        return _pid_list(lambda pids, room: lib.yr_set_members(pgrp or 0, uid or 0, pids, room))

    def _judge_set(self, ev, caller, hook: str, operation: str, members: list[int],
                   what: str) -> bool:
        """A call on a set of processes: refused when it holds a protected
        one, or one the chain refuses (outside a contained sandbox)."""
        for pid in members:
            if self._protected(pid):
                self._refuse(ev, caller, what)
                return False
        for pid in members:
            if pid != caller.tgid and not self._judge(ev, caller, hook, operation, pid, pid):
                return False
        return True

    def _group(self, caller, pgrp_named: int) -> int | None:
        """The process group the caller names (0: its own), in our numbers;
        None: none. Raises OSError when the caller's could not be read."""
        if pgrp_named != 0:
            return procfs.caller_pid(caller.tid, pgrp_named)
        ids = _ids_of(caller.tid)
        return ids[0] if ids else None

    # -- the kill family -------------------------------------------------------

    def _pinned(self, ev, caller, tid: int) -> bool:
        """Is a signal to tid (a number of the caller's) sent here through a
        pidfd rather than continued? Not to the caller's own thread or
        process (alive while it waits in this call: its numbers cannot be
        taken again), not under Landlock's signal scope, not from another
        pid namespace."""
        return (tid not in (caller.tid, caller.tgid) and not self.sup.shield.signal_scope
                and lib.yr_in_our_pidns(caller.tid) == 1)

    def _pidns_reaches_only_inside(self, caller) -> bool:
        """May a call that reaches every process of the caller's pid
        namespace (kill(-1), PRIO_USER, IOPRIO_WHO_USER) go on to the kernel?
        Where that namespace is not ours, none of yama-run's processes has a
        number there. Contained, it must also have been made inside: its
        init one of the sandbox's processes. A pid namespace outside (a
        container's) is entered by setns with a descriptor of it, and root
        inside opens one by its handle (open_by_handle_at, read-only, never
        routed): the call then reached the container's processes (found by
        a review). A task never leaves its active pid namespace, and an init
        inside makes the namespace's members its descendants, or processes
        of a privileged outsider that joined it by its own doing."""
        if lib.yr_in_our_pidns(caller.tid) != 0:
            return False
        if not self.sup.shield.contained:
            return True
        init = lib.yr_pidns_init(caller.tid)
        return init > 0 and procfs.tgid_of(init) is not None and \
            not self.sandbox.outside(init)

    def _queued_info(self, ev, caller, sig: int):
        """The siginfo of a signal sent through a pin: ffi.NULL for kill and
        tgkill; of rt_(tg)sigqueueinfo, a native copy, read once (an i386 or
        x32 one converted as the kernel converts it: native_siginfo), its
        si_signo the call's signal, as the kernel sets it
        (__copy_siginfo_from_user; pidfd_send_signal would refuse another).
        None: answered (EFAULT, or EPERM for a code only a signal to oneself
        may carry), before the target is looked for, as the kernel does."""
        if ev.sys in (lib.YR_SYS_KILL, lib.YR_SYS_TGKILL):
            return ffi.NULL
        addr = ev.args[2] if ev.sys == lib.YR_SYS_RT_SIGQUEUEINFO else ev.args[3]
        raw = ffi.new("char[]", SIGINFO_SIZE)
        if not read_caller(caller, addr, raw, SIGINFO_SIZE):
            self._reply(ev, errno.EFAULT)
            return None
        got = bytes(ffi.buffer(raw))
        code = struct.unpack_from("<i", got, 8)[0]
        if code >= 0 or code == SI_TKILL:       # pinned: never the caller's own thread
            self._reply(ev, errno.EPERM)
            return None
        if ev.arch != AUDIT_ARCH_X86_64 or ev.nr & X32_SYSCALL_BIT:
            return ffi.new("char[]", native_siginfo(got, sig))
        return ffi.new("char[]", struct.pack("<i", sig) + got[4:])

    def _signal_pinned(self, ev, caller, tid: int, sig: int, *, thread: bool,
                       tgid_wanted: int | None = None, info=ffi.NULL) -> None:
        """Send sig to the task numbered tid (ours: the caller's pid namespace
        is), as the caller, through a pidfd taken first: the task judged is
        the task signalled, whatever later takes its number (it only ever
        reaches the pinned one, or nothing once that one is gone).
        thread: to that thread alone (tkill, tgkill), else to its process."""
        try:
            fd, target, tgid = _pin(tid)
        except OSError as e:
            self._reply(ev, e.errno)
            return
        try:
            if not tgid or (tgid_wanted is not None and tgid != tgid_wanted):
                self._reply(ev, errno.ESRCH)
                return
            if sig == 0 and ev.sys == lib.YR_SYS_KILL and target == tgid and \
                    not self.sup.shield.contained and self._protected(tgid):
                self._probe_of_ours(ev, caller, tgid)
                return
            if not self._judge(ev, caller, "task_kill", f"{_name(ev)} (signal {sig})",
                               target, tgid):
                return
            flags = PIDFD_SIGNAL_THREAD if thread else PIDFD_SIGNAL_THREAD_GROUP
            rc = lib.yr_pidfd_signal_as(caller.creds, fd, sig, info, flags)
            rc = _as_natively(caller, rc, fd, target, sig, info, flags)
            self._reply(ev, -rc if rc < 0 else 0)
        finally:
            if fd >= 0:
                os.close(fd)

    def _probe_of_ours(self, ev, caller, tgid: int) -> None:
        """kill(pid, 0) of one of yama-run's processes by its pid (pinned: it
        lives) sends nothing: the test of its parent a program makes (the
        supervisor, for the main program: "exit once my parent is gone" quit
        at once on the refusal) is answered as the kernel answers the caller
        (kill_ok_by_cred). Only the process's own number, which getppid
        gives: our other threads' numbers stay unanswered (no oracle of
        them). Computed, not sent as the caller: a thread of ours passes the
        kernel's same-thread-group test whatever it acts as. Not contained:
        there no process outside is reached, ours included."""
        allowed = lib.yr_kill_uid_check(caller.creds, tgid) == 1   # unreadable: refused
        self._reply(ev, 0 if allowed else errno.EPERM)

    def on_kill(self, ev, caller) -> None:
        """kill: a process, a group (0, -pgrp), or all (-1); rt_sigqueueinfo:
        a process."""
        pid, sig = int_arg(ev.args[0]), int_arg(ev.args[1])
        if pid <= 0 and ev.sys != lib.YR_SYS_KILL:
            # rt_sigqueueinfo names one process, never a group or all
            # (kill_proc_info): 0 and below find none. The kernel's answer
            # (EFAULT, EPERM, ESRCH, in its order), reaching no one.
            self._pass(ev)
        elif pid > 0 and self._pinned(ev, caller, pid):
            info = self._queued_info(ev, caller, sig)
            if info is not None:
                self._signal_pinned(ev, caller, pid, sig, thread=False, info=info)
        elif pid > 0:
            self._by_pid(ev, caller, "task_kill", f"{_name(ev)} (signal {sig})", pid)
        elif self.sup.shield.signal_scope:
            # Landlock's scope drops the signal for every process outside the
            # domain, yama-run's included: the kernel decides per member.
            self._pass(ev)
        elif pid == -1 and self._pidns_reaches_only_inside(caller):
            # Every process of the caller's own pid namespace but its init:
            # the kernel's, continued.
            self._pass(ev)
        elif pid == -1:
            # Every process the caller may signal: that may include us.
            self._refuse(ev, caller, "a signal to every process (kill -1)")
        else:
            self._kill_group(ev, caller, -pid, sig)

    def _kill_group(self, ev, caller, pgrp_named: int, sig: int) -> None:
        """kill(0) or kill(-pgrp). Whatever /proc cannot tell (the supervisor
        out of descriptors: a review filled its table with these very calls'
        pins) refuses the call: taken for "none of ours", it let the kernel
        signal the front."""
        try:
            self._kill_group_read(ev, caller, pgrp_named, sig)
        except OSError as e:
            self._refuse_unread(ev, caller, "a group signal", e)

    def _kill_group_read(self, ev, caller, pgrp_named: int, sig: int) -> None:
        pgrp = self._group(caller, pgrp_named)
        if pgrp is None:
            self._reply(ev, errno.ESRCH)
        elif pgrp in self._groups_of_ours():
            self._kill_our_group(ev, caller, pgrp, sig)
        elif not self.sup.shield.contained or self._group_judged(ev, caller, pgrp, sig):
            self._send_to_group(ev, caller, pgrp_named, pgrp, sig)

    def _groups_of_ours(self) -> set[int]:
        """The process groups of yama-run's processes (a gone one's: none).
        Read once per call: none of them ever changes its group. Raises
        OSError when one could not be read."""
        return {ids[0] for pid in self.sup.protected_pids if (ids := _ids_of(pid))}

    def _group_judged(self, ev, caller, pgrp: int, sig: int) -> bool:
        """Contained, a group none of ours is in: each member judged by the
        chain (outsiders refused), PIN_BATCH pinned at a time: the signal
        goes to the group afterwards, by its number, so a member need not
        stay pinned once judged: a number taken again meanwhile gets the
        signal only by joining the group, as any newcomer would (a thread of
        ours is in our group, never this one).
        False: refused (answered)."""
        verdict = True

        def judge(members: dict[int, int]) -> bool:
            nonlocal verdict
            verdict = self._judge_set(ev, caller, "task_kill", f"{_name(ev)} (signal {sig})",
                                      list(members), "a group signal")
            return verdict

        _each_pinned_batch(pgrp, judge)
        return verdict

    def _kill_our_group(self, ev, caller, pgrp: int, sig: int) -> None:
        if ev.sys != lib.YR_SYS_KILL or lib.yr_in_our_pidns(caller.tid) != 1:
            # (sent from here, a signal from another pid namespace would reach
            # what the kernel keeps from it: an init's SIGKILL, for one)
            self._refuse(ev, caller, "a signal to the supervisor's process group")
        else:
            self._kill_group_but_us(ev, caller, pgrp, sig)

    def _send_to_group(self, ev, caller, pgrp_named: int, pgrp: int, sig: int) -> None:
        """A group signal judged on the group pgrp, none of ours in it. kill(0)
        names the caller's group, which the kernel reads again when it sends:
        meanwhile the caller (another of its threads, or its parent, by
        setpgid) may move it into a group of ours in the same session, and
        the front and the supervisor got the signal. Where the caller shares
        a session with one of ours, the signal is sent here to the group
        judged, as the caller (receivers see yama-run's pid as the sender, as
        for our own group below); elsewhere it can join none of ours, and an
        explicit -pgrp is a group whose number cannot change: continued."""
        if pgrp_named != 0 or not self._shares_a_session_with_us(caller):
            self._pass(ev)
        elif ev.sys != lib.YR_SYS_KILL or lib.yr_in_our_pidns(caller.tid) != 1:
            self._refuse(ev, caller, "a signal to its own group, which it may leave for ours")
        elif sig == signal.SIGCONT:
            # Sent by number as the caller, a member of another uid was refused
            # (its session is judged against ours): through pins, each given
            # SIGCONT with our authority where the caller's is refused.
            self._kill_group_but_us(ev, caller, pgrp, sig)
        else:
            args = ffi.new("uint64_t[6]", [(-pgrp) & 0xFFFFFFFFFFFFFFFF, sig, 0, 0, 0, 0])
            rc = lib.yr_syscall_as(caller.creds, SYS_KILL, args)
            self._reply(ev, -rc if rc < 0 else 0)

    def _shares_a_session_with_us(self, caller) -> bool:
        """Raises OSError when a session could not be read: taken for "not
        shared", the call was continued."""
        ours = {ids[1] for pid in self.sup.protected_pids if (ids := _ids_of(pid))}
        mine = _ids_of(caller.tgid)
        return mine is not None and mine[1] in ours

    def _kill_group_but_us(self, ev, caller, pgrp: int, sig: int) -> None:
        """kill(0) or kill(-pgrp) of the group yama-run shares with the program
        (it keeps the terminal's foreground): sent here to every member but
        yama-run's own (and, contained, but those outside), as the caller,
        through pins, PIN_BATCH at a time. Sent by number, a member reaped
        while the others were judged gave its number to a thread the
        supervisor started meanwhile (a FIFO open's worker), and the signal
        reached the supervisor (found by a review); a pin whose process is
        gone reaches nothing. A number is judged as the pinned process's: it
        was when the pin was taken, and a later holder is never signalled.
        Unlike the kernel's, this walk is not atomic: a process that joins the
        group meanwhile may be missed, a member that cannot be read or pinned
        refuses the call after the batches before it got the signal, and the
        receivers see yama-run's pid as the sender. A member refused to the
        caller's credentials that the kernel would let it signal is sent the
        signal with our authority (_sent_as_allowed). The answer is kill_pgrp's:
        0 if one member was signalled, else the last error (ESRCH: none)."""
        # No module hooks task_kill (not contained): no member to ask about,
        # where a request per member was most of a call's Python time.
        hooked = "task_kill" in self.sup.chain.hooks()
        signalled, last = False, -errno.ESRCH

        def send(members: dict[int, int]) -> bool:
            nonlocal signalled, last
            chosen = [pid for pid in members if not self._protected(pid) and (
                pid == caller.tgid or not hooked or not self._outside_refused(caller, pid, sig))]
            if chosen:     # through pins still held: a number reused reaches nothing
                pins, refused = [members[pid] for pid in chosen], ffi.new("uint64_t *")
                last = lib.yr_pidfd_kill_each_as(caller.creds, ffi.new("int32_t[]", pins),
                                                  len(chosen), sig, refused)
                again = [_sent_as_allowed(caller, pins[i], pid, sig, ffi.NULL, 0)
                         for i, pid in enumerate(chosen) if refused[0] >> i & 1]
                signalled = signalled or last == 0 or any(again)
            return True

        _each_pinned_batch(pgrp, send)
        self._reply(ev, 0 if signalled else -last)

    def _outside_refused(self, caller, pid: int, sig: int) -> bool:
        request = TaskAct(caller, "kill", f"kill (signal {sig})", pid, pid, hook="task_kill",
                          sandbox=self.sandbox)
        return self.sup.chain.walk("task_kill", request) is not None

    def on_tkill(self, ev, caller) -> None:
        tid = int_arg(ev.args[0])
        if tid <= 0:
            self._pass(ev)                  # EINVAL: the kernel says it
        elif self._pinned(ev, caller, tid):
            self._signal_pinned(ev, caller, tid, int_arg(ev.args[1]), thread=True)
        else:
            self._by_pid(ev, caller, "task_kill", f"tkill (signal {int_arg(ev.args[1])})", tid)

    def on_tgkill(self, ev, caller) -> None:
        tgid, tid, sig = int_arg(ev.args[0]), int_arg(ev.args[1]), int_arg(ev.args[2])
        if tgid <= 0 or tid <= 0:
            self._pass(ev)                  # EINVAL: the kernel says it
            return
        if self._pinned(ev, caller, tid):
            info = self._queued_info(ev, caller, sig)
            if info is not None:
                self._signal_pinned(ev, caller, tid, sig, thread=True, tgid_wanted=tgid,
                                    info=info)
            return
        found = self._target(caller, tid)
        leader = procfs.caller_pid(caller.tid, tgid)
        if found is None or leader != found[1]:
            self._reply(ev, errno.ESRCH)    # no such thread in that group
        elif self._judge(ev, caller, "task_kill", f"{_name(ev)} (signal {sig})", *found):
            self._pass(ev)

    def _group_signal_refused(self, ev, caller, flags: int, number: int | None, sig: int,
                              kernel_sends: bool) -> bool:
        """PIDFD_SIGNAL_PROCESS_GROUP: the kernel signals the process group
        whose id is the pidfd's pid (kill_pgrp_info), not the group its task
        is in now: a group outlives its leader, and a task that leads none
        names an empty one (ESRCH). Refused where that group holds one of
        yama-run's processes, or, contained, one the chain refuses (a
        process outside that joined the group), as kill(-pgrp) is; or where
        the number is not known (a pidfd of a reaped task: its group may be
        ours). Landlock's signal scope keeps both out only of a signal the
        kernel sends from the caller (kernel_sends), never of one the
        supervisor sends for it, outside any domain: a contained program's
        signal to its own group, through a pidfd of its own, reached a
        process outside that had joined the group, with the scope and
        without (only the pidfd's task was judged). True: refused
        (answered)."""
        if not flags & PIDFD_SIGNAL_PROCESS_GROUP or (kernel_sends and
                                                      self.sup.shield.signal_scope):
            return False
        what = "a signal to a process group that may be the supervisor's"
        try:
            if number is not None and number > 0 and self.sup.shield.contained:
                return not self._group_judged(ev, caller, number, sig)
            if number is not None and number > 0 and \
                    not any(self._protected(p) for p in self._members(caller, pgrp=number)):
                return False
        except OSError as e:
            self._refuse_unread(ev, caller, what, e)
            return True
        self._refuse(ev, caller, what)
        return True

    def on_pidfd_send_signal(self, ev, caller) -> None:
        pidfd, sig = int_arg(ev.args[0]), int_arg(ev.args[1])
        info, flags = ev.args[2], ev.args[3] & 0xFFFFFFFF
        if pidfd in PIDFD_SELF:
            # the caller's own thread or process, read from no table (nothing
            # to swap): the kernel's to send, but to a group of ours
            own = caller.tid if pidfd == PIDFD_SELF_THREAD else caller.tgid
            if not self._group_signal_refused(ev, caller, flags, own, sig, kernel_sends=True):
                self._pass(ev)
            return
        copy, err = take_fd(caller, pidfd)
        if err:
            self._reply(ev, err)
            return
        try:
            target = _target_of(copy)
            if target is None:
                self._refuse(ev, caller, "pidfd_send_signal")
                return
            from_ours = lib.yr_in_our_pidns(caller.tid) == 1      # else the kernel sends it
            if self._group_signal_refused(ev, caller, flags, target, sig,
                                          kernel_sends=not from_ours):
                return
            if target > 0:
                tgid = procfs.tgid_of(target)
                if tgid and not self._judge(ev, caller, "task_kill",
                                            f"pidfd_send_signal (signal {sig})", target, tgid):
                    return
            if not from_ours:
                # The kernel judges by the sender's pid namespace: a target
                # it cannot see is EINVAL, and an init ignores SIGKILL sent
                # from inside its namespace, not from ours. Sent from here it
                # would reach both: the kernel sends it, from the caller's.
                # A pidfd swapped meanwhile reaches only what the caller's
                # namespace sees: yama-run's processes are outside it.
                self._pass(ev)
                return
            local = ffi.NULL
            if info:                            # read once, where the kernel copies it
                local = ffi.new("char[]", SIGINFO_SIZE)
                if not read_caller(caller, info, local, SIGINFO_SIZE):
                    self._reply(ev, errno.EFAULT)
                    return
            rc = lib.yr_pidfd_signal_as(caller.creds, copy, sig, local, flags)
            if target > 0 and not flags & PIDFD_SIGNAL_PROCESS_GROUP:
                rc = _as_natively(caller, rc, copy, target, sig, local, flags)
            self._reply(ev, -rc if rc < 0 else 0)
        finally:
            os.close(copy)

    # -- file owners: the kernel signals them on I/O (SIGIO, or F_SETSIG's) --------

    def _owner_refused(self, ev, caller, kind: int, pid: int) -> bool:
        """Would making this the file's owner let the caller signal a process
        it may not? True: refused (answered). What names no owner is left to
        the kernel's own answer, in its order (fs/fcntl.c): F_SETOWN_EX's
        unknown type (EINVAL), then its pid looked up as is, so a negative one
        names nothing (ESRCH); F_SETOWN's kin read a negative pid as a group,
        but INT_MIN (EINVAL: -INT_MIN overflows)."""
        ex = ev.sys == lib.YR_SYS_FCNTL and int_arg(ev.args[1]) == F_SETOWN_EX
        if pid == 0 or (ex and (pid < 0 or kind not in (F_OWNER_TID, F_OWNER_PID,
                                                        F_OWNER_PGRP))):
            return False
        if not ex and pid == -(1 << 31):
            return False
        if kind == F_OWNER_PGRP or pid < 0:
            try:
                pgrp = self._group(caller, abs(pid))
                members = self._members(caller, pgrp=pgrp) if pgrp else []
            except OSError as e:
                self._refuse_unread(ev, caller, "a file owner", e)
                return True
            return not self._judge_set(ev, caller, "task_kill", "file owner", members,
                                       "a file owner")
        found = self._target(caller, pid)
        return found is not None and not self._judge(ev, caller, "task_kill", "file owner",
                                                     *found)

    def on_fcntl(self, ev, caller) -> None:
        if int_arg(ev.args[1]) == F_SETFL:
            self.on_async(ev, caller)
        else:
            self.on_setown(ev, caller)

    def on_ioctl(self, ev, caller) -> None:
        cmd = int_arg(ev.args[1]) & 0xFFFFFFFF
        if cmd in PIDFD_GET_NAMESPACE:
            self.on_pidfd_namespace(ev, caller)
        elif cmd == FIOASYNC:
            self.on_async(ev, caller)
        else:
            self.on_setown(ev, caller)

    def on_async(self, ev, caller) -> None:
        """O_ASYNC turned on (fcntl F_SETFL, ioctl FIOASYNC) names an owner
        without F_SETOWN: a terminal makes its foreground process group the
        owner (tty_fasync), which may hold yama-run's front and supervisor or
        a process outside, and F_SETSIG then picks any signal, SIGKILL too;
        with no foreground group (a pty master always), whoever turns it on.
        Performed here, as the caller, on our copy of the descriptor, since
        another thread could swap the number after a check. In the kernel's
        order: the descriptor first (a closed or O_PATH one is EBADF: fdget
        refuses both), then FIOASYNC's value (EFAULT)."""
        fd, cmd = int_arg(ev.args[0]), int_arg(ev.args[1])
        copy, err = take_fd(caller, fd)
        if err:
            self._reply(ev, err)
            return
        try:
            value = ffi.new("int *")
            if fcntl.fcntl(copy, fcntl.F_GETFL) & os.O_PATH:
                self._reply(ev, errno.EBADF)
            elif cmd == FIOASYNC and not read_caller(caller, ev.args[2], value, 4):
                self._reply(ev, errno.EFAULT)
            elif (cmd != FIOASYNC or value[0] != 0) and stat.S_ISCHR(os.fstat(copy).st_mode):
                if self._async_owner_allowed(ev, caller, copy):
                    arg = value[0] if cmd == FIOASYNC else int_arg(ev.args[2])
                    self._async_by_a_process(ev, caller, copy, cmd, arg)
            else:
                self._async_naming_no_one(ev, caller, copy, cmd, value)
        finally:
            os.close(copy)

    def _async_naming_no_one(self, ev, caller, copy: int, cmd: int, value) -> None:
        """O_ASYNC off, or on for a pipe, a socket, a file: no owner named
        (their fasync keeps the one F_SETOWN set, judged): made as the
        caller by a thread of ours."""
        arg = int(ffi.cast("uintptr_t", value)) if cmd == FIOASYNC else int_arg(ev.args[2])
        args = ffi.new("uint64_t[6]", [copy, cmd, arg & 0xFFFFFFFFFFFFFFFF, 0, 0, 0])
        rc = lib.yr_syscall_as(caller.creds, SYS_IOCTL if cmd == FIOASYNC else SYS_FCNTL, args)
        self._reply(ev, -rc if rc < 0 else 0, 0 if rc < 0 else rc)

    def _async_owner_allowed(self, ev, caller, copy: int) -> bool:
        """Whom would the kernel make the owner of this character device? A
        pty master is never a controlling terminal (tty_open, and TIOCSCTTY
        and TIOCSPGRP set its slave's), so it names whoever turns O_ASYNC
        on: a process that is the caller (_async_by_a_process), nothing to
        judge. Another terminal names its foreground group, which is always
        a group of its session; a session gains no member from outside it
        (setsid makes a new one, setpgid stays in one), so when no process
        of the session is one the caller may not signal, no foreground group
        ever holds one. Its session is found by a walk of all of /proc (a
        read per process), so the receiver is marked costly first: the
        others are served meanwhile. A terminal in no session names whoever
        turns it on, as a master. A character device that is no terminal
        names no one (null, zero, random: their fasync sets no owner) or
        whoever turns it on (tun and tap: task_pid(current)): the process
        that is the caller, never a thread of ours, which hands the owner to
        the caller as for a master; it was refused EPERM where natively the
        call goes on (a review). True: go on; False: refused (answered)."""
        device = ffi.new("unsigned int *")
        try:
            fcntl.ioctl(copy, TIOCGPTN, ffi.buffer(device))
            return True                             # a pty master
        except OSError:
            pass
        try:
            fcntl.ioctl(copy, TIOCGDEV, ffi.buffer(device))
        except OSError:
            return True                             # no terminal: no foreground group
        lib.yr_pool_mark_costly_here()
        try:
            # every process of the session(s) whose terminal it is, in C
            members = _pid_list(lambda pids, room:
                                lib.yr_session_members(device[0], pids, room))
        except OSError:
            self._refuse(ev, caller, "O_ASYNC on a terminal whose session cannot be read")
            return False
        return self._judge_set(ev, caller, "task_kill", "terminal owner (O_ASYNC)", members,
                               "O_ASYNC on a terminal whose session holds yama-run")

    def _async_by_a_process(self, ev, caller, copy: int, cmd: int, arg: int) -> None:
        """O_ASYNC turned on by a short-lived process that is the caller
        (csrc/helper.c yr_fasync_as), never by a thread of ours: where the
        kernel names whoever turns it on, a thread of ours was the owner for
        as long as it lived, and input on a pty master sent the supervisor
        SIGIO or F_SETSIG's signal (found by a review: yama-run killed in
        about a second). The process names the calling thread instead, as
        the kernel would have (its pid, as a process: a thread that is no
        leader reads F_GETOWN 0 and takes the SIGIO first), by number: a pin
        of that thread, taken while it still waits in its call (it cannot be
        reaped then), tells the process whether the number is still its own."""
        try:
            pin = os.pidfd_open(caller.tid, PIDFD_THREAD)
        except OSError as e:
            self._reply(ev, e.errno)
            return
        try:
            if caller.still_waits is not None and not caller.still_waits():
                self._reply(ev, errno.ESRCH)       # gone: the answer reaches no one
                return
            rc = lib.yr_fasync_as(caller.creds, copy, cmd, arg, caller.tid, pin)
            self._reply(ev, -rc if rc < 0 else 0)
        finally:
            os.close(pin)

    def on_setown(self, ev, caller) -> None:
        """F_SETOWN, F_SETOWN_EX, FIOSETOWN and SIOCSPGRP: performed here, as
        the caller, on a copy of the descriptor (another thread could swap
        the number). The value the last three read from the caller's memory
        is read once. An owner named by pid is pinned by a pidfd before it is
        judged: continued, F_SETOWN let the kernel look the number up again
        when the caller ran, and the program made it a thread the supervisor
        had just started (its zombie child reaped, the pid space wrapped):
        F_SETSIG's SIGKILL reached yama-run (found by a review). Plain
        F_SETOWN is still continued where a number cannot change hands
        (_owner_pinned: none, a group, the caller's own), and all four under
        Landlock's signal scope, which judges the owner's setter."""
        fd, cmd, arg = int_arg(ev.args[0]), int_arg(ev.args[1]), ev.args[2]
        if ev.sys == lib.YR_SYS_FCNTL and cmd == F_SETOWN:
            kind, pid, have = F_OWNER_PID, int_arg(arg), True
            if not self._owner_pinned(ev, caller, kind, pid):
                if not self._owner_refused(ev, caller, kind, pid):
                    self._pass(ev)
                return
        else:
            kind, pid, have = _owner_read(caller, cmd, arg)
            if self.sup.shield.signal_scope:
                # Landlock's scope judges a SIGIO by the domain of whoever set
                # the owner (hook_file_set_fowner): set here, outside any
                # domain, it reached a thread of ours that took the number
                # (found by a review). The caller sets it: continued.
                if not (have and self._owner_refused(ev, caller, kind, pid)):
                    self._pass(ev)
                return
            if have and pid and lib.yr_in_our_pidns(caller.tid) != 1:
                if not self._owner_refused(ev, caller, kind, pid):
                    # its pid is a number of its own namespace; we would act on ours
                    self._refuse(ev, caller, "a file owner named from another pid namespace")
                return
        copy, err = take_fd(caller, fd)
        if err:
            self._reply(ev, err)
            return
        try:
            if have and self._owner_pinned(ev, caller, kind, pid):
                self._setown_pinned(ev, caller, copy, cmd, kind, pid)
            elif not (have and self._owner_refused(ev, caller, kind, pid)):
                rc = lib.yr_setown_as(caller.creds, copy, cmd, kind, pid, int(have), -1)
                self._reply(ev, -rc if rc < 0 else 0, 0 if rc < 0 else rc)
        finally:
            os.close(copy)

    def _owner_pinned(self, ev, caller, kind: int, pid: int) -> bool:
        """Is an owner named by pid set through a pin? Not none (0), not a
        group (the kernel signals only the group's processes, and no thread
        of ours leads one), and not as _pinned leaves a signal to the kernel:
        the caller's own numbers, Landlock's signal scope (it drops SIGIO to
        every process of ours), another pid namespace (ours are not in it)."""
        return (pid > 0 and kind in (F_OWNER_TID, F_OWNER_PID)
                and self._pinned(ev, caller, pid))

    def _setown_pinned(self, ev, caller, copy: int, cmd: int, kind: int, pid: int) -> None:
        """The owner set to the task numbered pid (ours) as pinned, judged,
        then named to the kernel while the pin is alive (yr_setown_as). A
        pid that names no task is put to the kernel as a number that never
        names one, for its own answer (EBADF, ENOTTY, EINVAL, else ESRCH)."""
        try:
            pin, target, tgid = _pin(pid)
        except OSError as e:
            self._reply(ev, e.errno)
            return
        try:
            if tgid is None:
                pid = NO_SUCH_PID
            elif not self._judge(ev, caller, "task_kill", "file owner", target, tgid):
                return
            rc = lib.yr_setown_as(caller.creds, copy, cmd, kind, pid, 1,
                                  pin if tgid is not None else -1)
            self._reply(ev, -rc if rc < 0 else 0, 0 if rc < 0 else rc)
        finally:
            if pin >= 0:
                os.close(pin)

    # -- limits, priority, scheduling, memory --------------------------------------

    def on_prlimit(self, ev, caller) -> None:
        """prlimit64(pid, resource, new, old), routed when setting another's."""
        resource = int_arg(ev.args[1])
        name = RLIMITS[resource] if 0 <= resource < len(RLIMITS) else str(resource)
        self._by_pid(ev, caller, "task_prlimit", f"prlimit64 RLIMIT_{name}",
                     int_arg(ev.args[0]))

    def on_setpriority(self, ev, caller) -> None:
        self._who(ev, caller, "task_setnice", "setpriority", int_arg(ev.args[0]),
                  int_arg(ev.args[1]), (PRIO_PROCESS, PRIO_PGRP, PRIO_USER))

    def on_ioprio_set(self, ev, caller) -> None:
        self._who(ev, caller, "task_setioprio", "ioprio_set", int_arg(ev.args[0]),
                  int_arg(ev.args[1]), (IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP, IOPRIO_WHO_USER))

    def _who(self, ev, caller, hook: str, name: str, which: int, who: int, kinds) -> None:
        """setpriority and ioprio_set: a process, a group or a user's processes
        (who 0: the caller's own). A set that holds a protected process, or
        (contained) one outside, is refused whole: the kernel's loop over it
        cannot be made to skip one."""
        process, group, user = kinds
        if which == process:
            self._by_pid(ev, caller, hook, name, who)
            return
        if which == user and self._pidns_reaches_only_inside(caller):
            # The kernel's loop skips every process without a number in the
            # caller's pid namespace.
            self._pass(ev)
            return
        if which not in (group, user):
            self._pass(ev)                  # EINVAL: the kernel says it
            return
        what = f"{name} of a set of processes"
        try:
            members = self._who_members(caller, which == group, who)
        except OSError as e:
            self._refuse_unread(ev, caller, what, e)
            return
        if members is None:
            self._refuse(ev, caller, f"{name} of a user named from another user namespace")
        elif self._judge_set(ev, caller, hook, name, members, what):
            self._pass(ev)

    def _who_members(self, caller, of_group: bool, who: int) -> list[int] | None:
        """The processes setpriority/ioprio_set's group or user names; None:
        a user named from another user namespace. Raises OSError (_members)."""
        if of_group:
            pgrp = self._group(caller, who)
            return self._members(caller, pgrp=pgrp) if pgrp else []
        uid = caller.creds.ruid if who == 0 else _uid_of_user(caller, who)
        return None if uid is None else self._members(caller, uid=uid)

    def on_sched(self, ev, caller) -> None:
        self._by_pid(ev, caller, "task_setscheduler", _name(ev), int_arg(ev.args[0]))

    def on_movememory(self, ev, caller) -> None:
        name = "migrate_pages" if ev.sys == lib.YR_SYS_MIGRATE_PAGES else "move_pages"
        self._by_pid(ev, caller, "task_movememory", name, int_arg(ev.args[0]))

    # -- by pidfd: performed on our copy, as the caller ----------------------------

    def _swaps_are_the_kernels(self, caller) -> bool:
        """May a call on the caller's own process be continued, though the
        kernel takes its pidfd again from the caller's table after our
        answer? Another thread sharing the table may swap the descriptor
        meanwhile (the race): the kernel then judges the new target itself,
        on the caller's credentials (process_madvise: mm_access, a ptrace
        check), and that is enough where it refuses whatever ours would: in
        Landlock's domain (every process outside it, yama-run's included),
        or not contained, where ours refuses yama-run's processes alone, all
        non-dumpable: refused to a caller without CAP_SYS_PTRACE over their
        user namespace (or one below it, where theirs began)."""
        if self.sup.shield.landlock:
            return True
        if self.sup.shield.contained:
            return False
        return not any(procfs.capable_over(caller, pid, procfs.CAP_SYS_PTRACE)
                       for pid in {self.me, *self.sup.protected_pids})

    def _by_pidfd(self, ev, caller, name: str, perform, hook: str = "task_movememory",
                  err: int = errno.EPERM, other=None, gives_fd: bool = False,
                  own_is_local: bool = False) -> None:
        """perform(copy, target) on our copy of the caller's pidfd (its first
        argument), once the target is judged at hook (refused with err); a
        descriptor that is no pidfd: other(copy), else EBADF. gives_fd: the
        result is a descriptor of ours, installed as the call's (O_CLOEXEC).
        own_is_local: the kernel's rule differs for the caller's own process
        (its own mm), which a call performed here never is: such a call is
        continued where a swapped descriptor gains nothing."""
        if int_arg(ev.args[0]) in PIDFD_SELF:
            self._pass(ev)      # the caller itself, read from no table: nothing to swap
            return
        copy, bad = take_fd(caller, int_arg(ev.args[0]))
        if bad:
            self._reply(ev, bad)
            return
        try:
            target = pidfd_target(copy)
            if target is None:
                rc = other(copy) if other else -errno.EBADF
                self._reply(ev, -rc if rc < 0 else 0, 0 if rc < 0 else rc)
                return
            tgid = procfs.tgid_of(target) if target > 0 else None
            if tgid is None:
                self._reply(ev, errno.ESRCH)
                return
            if own_is_local and tgid == caller.tgid and self._swaps_are_the_kernels(caller):
                self._pass(ev)
                return
            if not self._judge(ev, caller, hook, name, target, tgid, err):
                return
            rc = perform(copy, target)
            if rc >= 0 and gives_fd:
                err = lib.yr_reply_addfd(self.sup.ctx, ev.id, rc, os.O_CLOEXEC)   # closes rc
                if err < 0:
                    self._reply(ev, -err)
            else:
                self._reply(ev, -rc if rc < 0 else 0, 0 if rc < 0 else rc)
        finally:
            os.close(copy)

    def on_process_madvise(self, ev, caller) -> None:
        """process_madvise(pidfd, iovec, vlen, advice, flags): the iovecs
        (addresses in the target) read once from the caller; the kernel's own
        check (mm_access, READ_FSCREDS; CAP_SYS_NICE) is made on the caller's
        credentials."""
        vlen = ev.args[2] & 0xFFFFFFFFFFFFFFFF
        if vlen > UIO_MAXIOV:
            self._reply(ev, errno.EINVAL)
            return
        compat = ev.arch == 0x40000003 or bool(ev.nr & 0x40000000)
        each = 8 if compat else 16
        raw = ffi.new("char[]", max(1, vlen * each))
        if vlen and not read_caller(caller, ev.args[1], raw, vlen * each):
            self._reply(ev, errno.EFAULT)
            return
        fmt = "<II" if compat else "<QQ"
        vecs = [struct.unpack_from(fmt, ffi.buffer(raw), i * each) for i in range(vlen)]
        local = ffi.new("uint64_t[]", [v for pair in vecs for v in pair] or [0])

        def perform(pidfd: int, target: int) -> int:
            # mm_access's refusal is EACCES; EPERM only for CAP_SYS_NICE, after it
            refusal = procfs.kernel_ptrace_refusal(caller, target, procfs.PTRACE_MODE_FSCREDS,
                                                   errno.EACCES)
            if refusal:
                return -refusal
            args = ffi.new("uint64_t[6]", [pidfd, int(ffi.cast("uintptr_t", local)), vlen,
                                           int_arg(ev.args[3]), ev.args[4] & 0xFFFFFFFF, 0])
            return lib.yr_syscall_as(caller.creds, SYS_PROCESS_MADVISE, args)

        self._by_pidfd(ev, caller, "process_madvise", perform, own_is_local=True)

    def on_process_mrelease(self, ev, caller) -> None:
        flags = ev.args[1] & 0xFFFFFFFF

        def perform(pidfd: int, _target: int) -> int:
            args = ffi.new("uint64_t[6]", [pidfd, flags, 0, 0, 0, 0])
            return lib.yr_syscall_as(caller.creds, SYS_PROCESS_MRELEASE, args)

        self._by_pidfd(ev, caller, "process_mrelease", perform)

    # -- PTRACE_MODE_READ accesses without a /proc path (contained only) -----------

    def on_kcmp(self, ev, caller) -> None:
        """kcmp(pid1, pid2, ...): decided on the two pids, then continued (a
        pid names a task for good while it lives)."""
        if self.sup.shield.landlock:
            self._pass(ev)
            return
        for pid in (int_arg(ev.args[0]), int_arg(ev.args[1])):
            found = self._target(caller, pid)
            if found is None:
                self._reply(ev, errno.ESRCH)
                return
            if not self._judge(ev, caller, "ptrace_read_access", "kcmp", *found):
                return
        self._pass(ev)

    def on_get_robust_list(self, ev, caller) -> None:
        if self.sup.shield.landlock:
            self._pass(ev)
        else:
            self._by_pid(ev, caller, "ptrace_read_access", "get_robust_list",
                         int_arg(ev.args[0]))

    def on_pidfd_namespace(self, ev, caller) -> None:
        """ioctl(pidfd, PIDFD_GET_*_NAMESPACE, 0): emulated on our copy of the
        descriptor (another thread could swap it after a check), as the
        caller, after the kernel's own rule for it (PTRACE_MODE_READ_FSCREDS,
        EACCES); the namespace's descriptor is installed as its result.
        A descriptor that is no pidfd gets the same ioctl on our copy, as
        the caller (0xFF is pidfs's ioctl type; the argument is 0)."""
        if self.sup.shield.landlock:
            self._pass(ev)
            return
        cmd = int_arg(ev.args[1]) & 0xFFFFFFFF

        def ioctl(copy: int) -> int:
            args = ffi.new("uint64_t[6]", [copy, cmd, 0, 0, 0, 0])
            return lib.yr_syscall_as(caller.creds, SYS_IOCTL, args)

        def refusal(target: int) -> int:
            return procfs.kernel_ptrace_refusal(
                caller, target, lib.YR_PTRACE_READ | lib.YR_PTRACE_FSCREDS, errno.EACCES)

        def perform(copy: int, target: int) -> int:
            if (err := refusal(target)):
                return -err
            fd = ioctl(copy)                               # a namespace's fd, O_CLOEXEC
            if fd >= 0 and (err := refusal(target)):
                os.close(fd)   # again, the fd in hand: a target that changed since it was judged
                return -err
            return fd

        self._by_pidfd(ev, caller, "pidfd namespace", perform, "ptrace_read_access",
                       errno.EACCES, other=ioctl, gives_fd=True)

    def on_setns(self, ev, caller) -> None:
        """setns(fd, nstype): the caller must make it itself, so it is
        continued. The pidfd it names is judged on our copy; and since the
        kernel takes the descriptor again, from the caller's table, after
        our answer, the call goes on only when no other task shares that
        table (table_shared): none can then swap the descriptor (a task comes
        to share it only by a clone of one that already does). A
        caller whose table is shared (another thread) is refused (EPERM)
        while the sandbox is contained without a Landlock domain. Not
        contained, only yama-run's processes are refused, and the kernel
        refuses them too (non-dumpable) to any caller but root."""
        if self.sup.shield.landlock:
            self._pass(ev)
            return
        # from the calling thread's own table, which the kernel will read
        copy, err = take_fd(caller, int_arg(ev.args[0]))
        if err:
            self._reply(ev, err)
            return
        try:
            target = pidfd_target(copy)
        finally:
            os.close(copy)
        if target is not None and target > 0:
            tgid = procfs.tgid_of(target)
            if tgid is None:
                self._reply(ev, errno.ESRCH)
                return
            if not self._judge(ev, caller, "ptrace_read_access", "setns", target, tgid):
                return
        shield = self.sup.shield            # permissive: would-be refusals only recorded
        if not shield.contained or shield.permissive:
            self._pass(ev)
        elif not tables_shared_by_threads_only(self.sup.hooks(), shield.kernel):
            self.sup.audit.say(f"refused setns by {caller.describe()}: contained since it "
                               "started, so a process may share its descriptor table unseen")
            self._reply(ev, errno.EPERM)
        elif table_shared(caller.tid):
            self.sup.audit.say(f"refused setns by {caller.describe()}: its descriptor table is "
                               "shared (another thread could swap the descriptor after the check)")
            self._reply(ev, errno.EPERM)
        else:
            self._pass(ev)


def table_shared(tid: int) -> bool:
    """Does the caller (blocked in a routed call) share its descriptor table
    with another task? Only a thread of its own process can: here no process
    is cloned with another's table (routes.py's SHARED_TABLE_GUARDS; a relay
    of such processes outran every listing of the sandbox's tasks). The
    caller blocked, only a thread that shares the table can make another
    that does. Each thread listed is compared (kcmp KCMP_FILES); one that
    cannot be (gone) counts as sharing. But an exiting thread has dropped
    its table before it leaves the list (kcmp: "another table"), and a
    listing stops at a thread that leaves while it is read: a relay of
    threads, each making the next and exiting, got 17 calls of 200 past one
    listing. So the threads are listed again until a listing brings none
    that was not compared, and then the process's thread count must be the
    listing's, every thread listed still there after the count was read
    (none left, so none was uncounted while a thread it made was): then
    no thread outside the listing existed when the count was read, and each
    listed one that could still make a sharer has a table of its own.
    Past SCAN_ROUNDS listings, or nothing to go by: shared (fail closed)."""
    tgid = procfs.tgid_of(tid)
    compared = set()
    for _ in range(SCAN_ROUNDS):
        threads = _threads_of(tgid) if tgid else None
        if not threads or tid not in threads:
            return True
        new = threads - compared - {tid}
        if not new:
            return not (_thread_count(tgid) == len(threads) and
                        all(os.path.exists(f"/proc/{tgid}/task/{other}") for other in threads))
        if any(lib.yr_kcmp(tid, other, KCMP_FILES) not in (1, 2) for other in new):
            return True
        compared |= new
    return True


def _threads_of(tgid: int) -> set[int] | None:
    try:
        return {int(name) for name in os.listdir(f"/proc/{tgid}/task")}
    except OSError:
        return None


def _thread_count(tgid: int) -> int:
    """The Threads: line of /proc/TGID/status (-1: unreadable)."""
    try:
        with open(f"/proc/{tgid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Threads:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def _owner_read(caller, cmd: int, arg: int) -> tuple[int, int, bool]:
    """(kind, pid, read) of the owner F_SETOWN_EX, FIOSETOWN or SIOCSPGRP
    names in the caller's memory, read once; read False: unreadable."""
    size = 8 if cmd == F_SETOWN_EX else 4
    raw = ffi.new("char[]", size)
    if not read_caller(caller, arg, raw, size):
        return 0, 0, False
    if cmd == F_SETOWN_EX:
        return (*struct.unpack("<ii", ffi.buffer(raw)), True)
    return F_OWNER_PID, struct.unpack("<i", ffi.buffer(raw))[0], True


def native_siginfo(compat: bytes, sig: int) -> bytes:
    """The x86-64 siginfo the kernel makes of an i386 (or x32) one read from
    the caller (kernel/signal.c __copy_siginfo_from_user32: si_signo is the
    call's sig, the rest zeroed, the fields of siginfo_layout(sig, si_code)
    copied). To another task only si_code < 0 but SI_TKILL is allowed,
    whose layouts are SIL_TIMER (SI_TIMER), SIL_POLL (SI_SIGIO) and SIL_RT
    (the rest): each converted faithfully (SIL_TIMER's tid, overrun and int
    lie where SIL_RT's pid, uid and int do)."""
    err, code = struct.unpack_from("<ii", compat, 4)
    out = bytearray(SIGINFO_SIZE)
    struct.pack_into("<iii", out, 0, sig, err, code)
    if code == SI_SIGIO:                    # si_band (a long: sign-extended), si_fd
        band, fd = struct.unpack_from("<ii", compat, 12)
        struct.pack_into("<qi", out, 16, band, fd)
    else:                                   # si_pid/si_tid, si_uid/si_overrun, si_int
        struct.pack_into("<iIi", out, 16, *struct.unpack_from("<iIi", compat, 12))
    return bytes(out)


def _name(ev) -> str:
    """The syscall's name (the registry's first)."""
    return ffi.string(lib.yr_sys_names(ev.sys)).decode().split()[0]


def _as_natively(caller, rc: int, pin: int, target: int, sig: int, info, flags: int) -> int:
    """The answer to a signal sent through pin (task target) as the caller
    (rc): refused (EPERM), sent again with our authority where the kernel
    lets the caller send it (_sent_as_allowed); refused again, the
    caller's EPERM."""
    if rc != -errno.EPERM:
        return rc
    return 0 if _sent_as_allowed(caller, pin, target, sig, info, flags) else rc


def _sent_as_allowed(caller, pin: int, target: int, sig: int, info, flags: int) -> bool:
    """Is a signal refused to the caller's credentials (as lent: our thread,
    in our session and user namespace) one the kernel lets the caller send?
    Then sent through pin with our own authority (a review: both refused):
      * SIGCONT to a process of the caller's session (the kernel's
        exemption, judged on the sender's session, never the caller's:
        yr_pidfd_cont_in_session, where the race is);
      * a caller in a user namespace of its own, holding CAP_KILL over the
        target's (capabilities held there are not lent: Caller.creds).
    True: sent."""
    if sig == signal.SIGCONT and \
            lib.yr_pidfd_cont_in_session(caller.creds, pin, target, caller.tgid, info, flags) == 0:
        return True
    return _kill_capable(caller, pin, target) and \
        lib.yr_pidfd_signal_ours(pin, sig, info, flags) == 0


def _kill_capable(caller, pin: int, target: int) -> bool:
    """Does a caller of another user namespace hold CAP_KILL over the pinned
    task target's (ns_capable; procfs.capable_over), where its ids fail the
    uid test (they pass: the EPERM was an LSM's, on the caller, never
    overruled)? Both read by number, then the pin tested alive: the reads
    were the pinned task's. The target may move to another namespace or
    change its ids before the signal is sent: it gets it as if sent before
    (the caller waits in its call meanwhile), as with the session's race."""
    return (caller.userns not in (procfs.OWN_USERNS, None)
            and lib.yr_kill_uid_check(caller.creds, target) == 0
            and procfs.capable_over(caller, target, procfs.CAP_KILL)
            and lib.yr_pidfd_alive(pin) == 1)


def _pid_list(fill) -> list[int]:
    """The pids fill(pids, room) lists (as snprintf: how many there are,
    more than room: asked again; -errno: raised as OSError)."""
    room = 256
    while True:
        pids = ffi.new("int32_t[]", room)
        n = fill(pids, room)
        if n < 0:
            raise OSError(-n, os.strerror(-n))
        if n <= room:
            return list(pids[0:n])
        room = n + 64                           # grown meanwhile: asked again


def _ids_of(pid: int) -> tuple[int, int] | None:
    """(process group, session) of the process numbered pid; None once it is
    gone. Raises OSError when /proc could not tell (out of descriptors, a
    line not understood): a decision that took that for "none of ours"
    failed open."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return int(fields[2]), int(fields[3])
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ESRCH):
            return None
        raise
    except (IndexError, ValueError):
        raise OSError(errno.EIO, f"/proc/{pid}/stat not understood") from None


def _uid_of_user(caller, who: int) -> int | None:
    """A uid the caller names, as ours: the same number in our user
    namespace, or unknown (None: nothing can be judged, the call refused)
    when the caller lives in another."""
    return who if caller.userns == procfs.OWN_USERNS else None


def _pin(tid: int) -> tuple[int, int | None, int | None]:
    """A pidfd on the task numbered tid (in our pid namespace), the task it
    pins and that task's process: (pin, target, tgid). pin -1 when no task
    has the number; tgid None when none does or the pinned one is gone.
    The tgid is read by number: once the pin is dead it may be a later
    task's, but the pin then reaches nothing (ESRCH), whatever is judged.
    Other failures of pidfd_open raise (OSError)."""
    try:
        pin = os.pidfd_open(tid, PIDFD_THREAD)
    except OSError as e:
        if e.errno not in (errno.ESRCH, errno.EINVAL):
            raise
        return -1, None, None
    target = pidfd_target(pin)
    return pin, target, procfs.tgid_of(target) if target and target > 0 else None


def _each_pinned_batch(pgrp: int, act) -> None:
    """act(members) for the processes of group pgrp (pid -> pin), pinned by
    yr_pin_group PIN_BATCH at a time in one walk of /proc, the pins closed
    after each act; stops where act returns False. Raises OSError when a
    process could not be read or pinned (out of descriptors). Each call
    pinned every member at once, and walked /proc again as its room grew:
    a few such calls filled the supervisor's table (a review: every other
    caller's opens failed, EMFILE)."""
    # The walk costs the receiver a read of every process's stat (250 ms
    # beside 3,000 processes): marked stalled before it (docs/stall.md), so
    # another serves the rest of the sandbox.
    lib.yr_pool_mark_costly_here()
    procdir = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        pids, pins = ffi.new("int32_t[]", PIN_BATCH), ffi.new("int32_t[]", PIN_BATCH)
        while (n := lib.yr_pin_group(procdir, pgrp, pids, pins, PIN_BATCH)) > 0:
            try:
                go_on = act({pids[i]: pins[i] for i in range(n)})
            finally:
                for i in range(n):
                    os.close(pins[i])
            if not go_on:
                return
        if n < 0:
            raise OSError(-n, os.strerror(-n))
    finally:
        os.close(procdir)


def _target_of(fd: int) -> int | None:
    """The pid a pidfd (or a /proc/PID directory fd) of ours refers to;
    -1 for an exited pidfd's process; None when it is neither (or a /proc of
    another pid namespace, which we cannot judge: refused)."""
    pid = pidfd_target(fd)
    if pid is not None:
        return pid
    try:
        m = re.fullmatch(r"/proc/(\d+)", os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return None
    return int(m.group(1)) if m else None
