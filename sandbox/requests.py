"""Typed requests: what a module decides on. The core builds them; facts that
cost a /proc read are fetched on first use and then kept (read once)."""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from functools import cached_property

from . import procfs
from ._yama import ffi, lib


class Caller:
    """The thread that made the syscall, and its process."""

    def __init__(self, tid: int, tgid: int, cap_effective: int, still_waits=None):
        self.tid = tid
        self.tgid = tgid
        self.cap_effective = cap_effective
        # Is the thread still waiting in its call? Only then is what was read
        # by its number (its ids) its own: a caller killed meanwhile frees
        # the number, which another task (a new thread of ours) may take.
        self.still_waits = still_waits

    def has_cap(self, cap: int) -> bool:
        return bool(self.cap_effective >> cap & 1)

    @cached_property
    def creds(self):
        """uids, gids, groups and capability sets (struct yr_creds), to act
        as the caller: capabilities held in another user namespace than the
        supervisor's mean nothing in ours, and are not lent (none are)."""
        c = ffi.new("struct yr_creds *")
        foreign = self.userns != procfs.OWN_USERNS     # read by number too: before the check
        if lib.yr_creds_read(self.tid, c) < 0 or \
                (self.still_waits is not None and not self.still_waits()):
            raise ProcessLookupError(self.tid)
        c.cap_effective = self.cap_effective   # as seen when the call was made
        if foreign:
            c.cap_effective = c.cap_permitted = c.cap_inheritable = 0
        return c

    @property
    def fsuid(self) -> int:
        return self.creds.fsuid

    @property
    def fsgid(self) -> int:
        return self.creds.fsgid

    @property
    def groups(self) -> tuple[int, ...]:
        return tuple(self.creds.groups[i] for i in range(self.creds.ngroups))

    @cached_property
    def comm(self) -> str:
        return procfs.comm_of(self.tid)

    @cached_property
    def userns(self):
        return procfs.userns_of(self.tid)

    def describe(self) -> str:
        return f"{self.tgid} ({self.comm})"


class Request:
    hook = ""
    default_errno = errno.EPERM

    def describe(self) -> str:
        """What was attempted, for the readable audit line."""
        raise NotImplementedError

    def audit_fields(self) -> dict:
        return {}


class Sandbox:
    """Which processes are the sandbox's: the supervisor's descendants (it is
    their parent and subreaper), except yama-run's own protected processes
    (sup.is_protected, the one place that tells them, and the helper
    processes C forks while they live: the gate's own answer)."""

    def __init__(self, sup):
        self._sup = sup
        self.root = os.getpid()

    def protected(self, tgid: int | None) -> bool:
        return tgid is not None and self._sup.is_protected(tgid)

    def outside(self, tid: int) -> bool:
        tgid = procfs.tgid_of(tid)
        if tgid is None:
            return False        # gone: the kernel's own look-up answers ESRCH
        return self.protected(tgid) or not procfs.is_descendant(self.root, tgid)


class TargetRequest(Request):
    """A request naming another task: target (a tid of ours) and its process."""

    caller: Caller
    target: int
    target_tgid: int
    sandbox: Sandbox | None

    @cached_property
    def target_comm(self) -> str:
        return procfs.comm_of(self.target)

    def target_outside(self) -> bool:
        """Is the target outside the sandbox (not one of the supervisor's
        descendants)? Containment's question."""
        return self.sandbox is not None and self.sandbox.outside(self.target)


@dataclass
class PtraceAccess(TargetRequest):
    """ptrace_access_check: an ATTACH-mode access to another task."""

    caller: Caller
    syscall: str           # "ptrace", "process_vm_readv", ...
    operation: str         # "PTRACE_ATTACH", "PTRACE_SEIZE", or the syscall name
    target: int            # the tid named by the caller
    target_tgid: int
    deny_errno: int = errno.EPERM   # EACCES for an open of /proc/PID/mem
    path: str = ""         # that open's path, as given
    sandbox: Sandbox | None = None
    hook = "ptrace_access_check"

    def target_alive(self) -> bool:
        return procfs.tgid_of(self.target) == self.target_tgid

    def target_is_descendant(self) -> bool:
        """Yama's task_is_descendant(current, target)."""
        return procfs.caller_is_ancestor(self.caller.tgid, self.target)

    def caller_descends_from(self, tgid: int) -> bool:
        """Is the caller's process tgid or one of its descendants?"""
        return procfs.is_descendant(tgid, self.caller.tid)

    def caller_is_tracer(self) -> bool:
        """Is the caller's thread group already the target's ptrace parent?"""
        tracer = procfs.tracer_of(self.target)
        return tracer > 0 and procfs.tgid_of(tracer) == self.caller.tgid

    def caller_capable(self, cap: int = procfs.CAP_SYS_PTRACE) -> bool:
        """ns_capable(target's user ns, cap) for the caller."""
        return procfs.capable_over(self.caller, self.target, cap)

    def describe(self) -> str:
        return f"{self.operation} of {self.target} ({self.target_comm})"

    def audit_fields(self) -> dict:
        fields = {"target": self.target, "target_comm": self.target_comm,
                  "operation": self.operation}
        if self.path:
            fields["path"] = self.path
        return fields


@dataclass
class TaskAct(TargetRequest):
    """A call that acts on another process by pid: a signal (task_kill),
    its limits (task_prlimit), priority (task_setnice, task_setioprio),
    scheduling (task_setscheduler), memory (task_movememory), a perf event on
    it (perf_event_open). The hook is the kernel's LSM hook of that name."""

    caller: Caller
    syscall: str
    operation: str         # what is done: "kill", "signal 9", "prlimit64 RLIMIT_CPU", ...
    target: int
    target_tgid: int
    hook: str = "task_kill"
    sandbox: Sandbox | None = None
    deny_errno: int = errno.EPERM

    @property
    def default_errno(self) -> int:
        return self.deny_errno

    def describe(self) -> str:
        return f"{self.operation} of {self.target} ({self.target_comm})"

    def audit_fields(self) -> dict:
        return {"target": self.target, "target_comm": self.target_comm,
                "operation": self.operation}


@dataclass
class TaskFree(Request):
    """task_free: a task the core pinned for a module is gone (Yama's
    yama_task_free). Never denies; the module forgets what it held."""

    task: object           # sandbox.taskwatch.Task
    hook = "task_free"
    syscall = ""
    caller = None

    def describe(self) -> str:
        return f"end of {self.task!r}"


@dataclass
class PtraceTraceme(Request):
    caller: Caller
    parent: int            # the caller's real parent (tgid), the future tracer
    syscall: str = "ptrace"
    hook = "ptrace_traceme"

    def parent_capable(self, cap: int = procfs.CAP_SYS_PTRACE) -> bool:
        """has_ns_capability(parent, caller's user ns, cap), where the parent
        is the thread that forked the caller (current->parent), with its own
        credentials (capset acts per thread). Where that thread cannot be
        told (procfs.parent_threads), every thread of the parent process
        must be capable: fail closed. The race: after this check a thread may
        drop the capability, or a new one (cloned with its creator's
        credentials) become the parent when the forking thread exits; either
        gains nothing, since a tracer may as well drop it once it traces (and
        a thread that lacks it here is refused, whatever it raises later)."""
        threads = procfs.parent_threads(self.parent, self.caller.tgid)
        return bool(threads) and all(self._thread_capable(tid, cap) for tid in threads)

    def _thread_capable(self, tid: int, cap: int) -> bool:
        """cap_capable(tid's creds, caller's user ns, cap): the walk up from
        the caller's namespace (procfs.capable_over, with tid as the subject):
        a capability held in it or above, or ownership of it or of one between."""
        caps = procfs.cap_effective(tid)
        if caps is None:
            return False
        try:
            return procfs.capable_over(Caller(tid, self.parent, caps), self.caller.tid, cap)
        except ProcessLookupError:      # its ids unreadable (gone): not capable
            return False

    def describe(self) -> str:
        return f"PTRACE_TRACEME to {self.parent} ({procfs.comm_of(self.parent)})"

    def audit_fields(self) -> dict:
        return {"target": self.parent, "operation": "PTRACE_TRACEME"}


PTRACER_ANY = "any"


@dataclass
class SetPtracer(Request):
    """task_prctl(PR_SET_PTRACER): the core has pinned the caller's process
    (its group leader, the tracee) and the named tracer task."""

    caller: Caller
    tracer: object | str | None     # a taskwatch.Task, PTRACER_ANY, or None to clear
    process: object = None          # taskwatch.Task: the caller's group leader (not for a clear)
    syscall: str = "prctl"
    hook = "task_prctl"
    option: str = field(default="PR_SET_PTRACER")

    def describe(self) -> str:
        if self.tracer is None:
            return "PR_SET_PTRACER clear"
        if self.tracer == PTRACER_ANY:
            return "PR_SET_PTRACER ANY"
        return f"PR_SET_PTRACER {self.tracer.pid}"

    def audit_fields(self) -> dict:
        if self.tracer is None or self.tracer == PTRACER_ANY:
            return {"tracer": "none" if self.tracer is None else "any"}
        return {"tracer": self.tracer.pid}


@dataclass
class PathLink(Request):
    """path_link: link or linkat. The core has captured the source (an O_PATH
    fd) and the new name's parent as the caller; the facts below are those of
    the captured source, as the caller sees it (lib.YR_LF_* bits).

    A rule that reads only `facts` (through the properties) can be tabulated
    for the C fast path: see modules.rule_table."""

    caller: Caller | None
    facts: int
    source: str = ""               # the old path as the caller gave it
    new: str = ""                  # the new path
    owner: int = -1                # the source's uid
    mode: int = 0                  # the source's st_mode
    syscall: str = "linkat"
    hook = "path_link"

    @classmethod
    def hypothetical(cls, facts: int) -> "PathLink":
        """A request that has nothing but facts: for tabulating a rule."""
        return cls(None, facts)

    def _fact(self, bit: int) -> bool:
        return bool(self.facts & bit)

    @property
    def caller_owns_source(self) -> bool:
        return self._fact(lib.YR_LF_OWNER)

    @property
    def caller_has_fowner(self) -> bool:
        return self._fact(lib.YR_LF_FOWNER)

    @property
    def source_is_regular(self) -> bool:
        return self._fact(lib.YR_LF_REGULAR)

    @property
    def source_is_setuid(self) -> bool:
        return self._fact(lib.YR_LF_SETUID)

    @property
    def source_is_setgid_exec(self) -> bool:
        return self._fact(lib.YR_LF_SETGID_EXEC)

    @property
    def caller_can_read_write(self) -> bool:
        return self._fact(lib.YR_LF_RW)

    def describe(self) -> str:
        return (f"{self.syscall} of {self.source!r} (uid {self.owner}, mode "
                f"{self.mode & 0o7777:04o}) to {self.new!r}")

    def audit_fields(self) -> dict:
        return {"source": self.source, "new": self.new, "source_uid": self.owner,
                "source_mode": f"{self.mode:o}"}


def _mode(mode: int) -> str:
    return f"{mode & 0o7777:04o}"


@dataclass
class FollowLink(Request):
    """follow_link: a path walk is about to follow a trailing symlink whose
    directory is sticky. The core holds the link and its directory open; the
    facts are theirs (lib.YR_FL_* bits). Tabulated for C like PathLink."""

    caller: Caller | None
    facts: int
    path: str = ""                 # the path as the caller gave it
    link: str = ""                 # the trailing link's name
    target: str = ""               # what it points to
    link_uid: int = -1
    dir_uid: int = -1
    dir_mode: int = 0
    syscall: str = "openat"
    hook = "follow_link"
    default_errno = errno.EACCES

    @classmethod
    def hypothetical(cls, facts: int) -> "FollowLink":
        return cls(None, facts)

    @property
    def follower_owns_link(self) -> bool:
        return bool(self.facts & lib.YR_FL_OWNER)

    @property
    def dir_sticky_world_writable(self) -> bool:
        return bool(self.facts & lib.YR_FL_DIR_STICKY_WW)

    @property
    def dir_owner_owns_link(self) -> bool:
        return bool(self.facts & lib.YR_FL_DIR_OWNER)

    def describe(self) -> str:
        return (f"{self.syscall} following {self.link!r} -> {self.target!r} in {self.path!r} "
                f"(link uid {self.link_uid}, directory uid {self.dir_uid} mode "
                f"{_mode(self.dir_mode)})")

    def audit_fields(self) -> dict:
        return {"path": self.path, "link": self.link, "target": self.target,
                "link_uid": self.link_uid, "dir_uid": self.dir_uid,
                "dir_mode": f"{self.dir_mode:o}"}


@dataclass
class CreateInSticky(Request):
    """create_in_sticky: open with O_CREAT met an existing FIFO or regular
    file in a sticky directory. The core holds the file (O_PATH) and opens
    that very file if allowed; facts are lib.YR_CF_* bits. Tabulated."""

    caller: Caller | None
    facts: int
    path: str = ""
    name: str = ""
    file_uid: int = -1
    file_mode: int = 0
    dir_uid: int = -1
    dir_mode: int = 0
    syscall: str = "openat"
    hook = "create_in_sticky"
    default_errno = errno.EACCES

    @classmethod
    def hypothetical(cls, facts: int) -> "CreateInSticky":
        return cls(None, facts)

    def _fact(self, bit: int) -> bool:
        return bool(self.facts & bit)

    @property
    def is_fifo(self) -> bool:
        return self._fact(lib.YR_CF_FIFO)

    @property
    def is_regular(self) -> bool:
        return self._fact(lib.YR_CF_REGULAR)

    @property
    def dir_world_writable(self) -> bool:
        return self._fact(lib.YR_CF_DIR_WW)

    @property
    def dir_group_writable(self) -> bool:
        return self._fact(lib.YR_CF_DIR_GW)

    @property
    def caller_owns_file(self) -> bool:
        return self._fact(lib.YR_CF_OWNER)

    @property
    def dir_owner_owns_file(self) -> bool:
        return self._fact(lib.YR_CF_DIR_OWNER)

    def describe(self) -> str:
        kind = "FIFO" if self.is_fifo else "regular file"
        return (f"{self.syscall} O_CREAT of existing {kind} {self.path!r} (uid {self.file_uid}) "
                f"in a sticky directory (uid {self.dir_uid}, mode {_mode(self.dir_mode)})")

    def audit_fields(self) -> dict:
        return {"path": self.path, "file_uid": self.file_uid,
                "file_mode": f"{self.file_mode:o}", "dir_uid": self.dir_uid,
                "dir_mode": f"{self.dir_mode:o}"}


@dataclass
class FileWrite(Request):
    """A file the gate holds (csrc/gate.c), opened for writing, whose write
    acts beyond the file: each kind below says how. The core opens it if
    allowed."""

    caller: Caller
    path: str                      # as given
    syscall: str = "openat"
    default_errno = errno.EACCES
    kind = ""                      # what the file is, for the audit line

    def describe(self) -> str:
        return f"{self.syscall} {self.path!r} for writing ({self.kind})"

    def audit_fields(self) -> dict:
        return {"path": self.path}


@dataclass
class GateRefusal(Request):
    """A /proc object the gate refused on its own, no module asked
    (csrc/gate.c): an entry of a procfs whose pid numbers name no process
    it can tell (a procfs of a pid namespace neither ours nor the
    caller's), which the kernel would check against that process."""

    caller: Caller
    path: str                      # as given
    syscall: str = "openat"
    hook = "proc_unproved"
    default_errno = errno.EACCES

    def describe(self) -> str:
        return f"{self.syscall} {self.path!r}"

    def audit_fields(self) -> dict:
        return {"path": self.path}


@dataclass
class UnreachableCaller(Request):
    """A call that failed closed (EPERM) because the supervisor may not read
    the caller's memory or its /proc files, as itself or as the caller
    (csrc/caller.c, yr_refuse_unreachable): a process that made itself
    non-dumpable, served without a user namespace (docs/everyday.md)."""

    caller: Caller
    syscall: str = "?"
    hook = "caller_unreachable"
    default_errno = errno.EPERM
    REASON = ("it is not dumpable, and without a user namespace the supervisor may not read "
              "its memory or its /proc files: nothing can be checked (fail closed; "
              "start yama-run as root, or let it make a user namespace)")

    def describe(self) -> str:
        return f"{self.syscall} (its arguments unread)"

    def audit_fields(self) -> dict:
        return {}


@dataclass
class CgroupWrite(FileWrite):
    """cgroup_write: a cgroup file opened for writing (cgroup.kill,
    cgroup.freeze, memory.max, cgroup.procs...), which acts on every process
    of its cgroup and of those below it, whoever they are."""

    hook = "cgroup_write"
    kind = "a cgroup file"


@dataclass
class BinfmtWrite(FileWrite):
    """binfmt_write: a binfmt_misc file opened for writing (`register` above
    all). A rule names an interpreter that the kernel opens by its path at
    each exec of a file the rule matches (with the F flag, once, at the
    write), following links with no call of the program's to judge: what
    fs.protected_symlinks would refuse there goes unseen."""

    hook = "binfmt_write"
    kind = "a binfmt_misc file"


@dataclass
class PathSymlink(Request):
    """path_symlink: symlink/symlinkat into a sticky directory, or link/linkat
    giving a symlink inode a new name there (syscall says which; target is
    then the link's body). The core holds the parent and makes the link
    there if allowed."""

    caller: Caller
    path: str                      # the new name as given
    target: str
    dir_uid: int
    dir_mode: int
    fsuid: int                     # the caller's, as the core acted
    syscall: str = "symlinkat"
    hook = "path_symlink"
    default_errno = errno.EACCES

    @property
    def dir_sticky_world_writable(self) -> bool:
        return (self.dir_mode & 0o1002) == 0o1002

    @property
    def caller_owns_dir(self) -> bool:
        return self.fsuid == self.dir_uid

    def describe(self) -> str:
        return (f"{self.syscall} {self.path!r} -> {self.target!r} in a sticky directory "
                f"(uid {self.dir_uid}, mode {_mode(self.dir_mode)})")

    def audit_fields(self) -> dict:
        return {"path": self.path, "target": self.target, "dir_uid": self.dir_uid,
                "dir_mode": f"{self.dir_mode:o}"}
