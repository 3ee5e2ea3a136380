"""Facts about tasks for the core and the requests (thin wrappers over csrc/procinfo.c)."""
from __future__ import annotations

import errno
import fcntl
import os
import struct

from ._yama import ffi, lib

CAP_KILL = 5
CAP_SYS_ADMIN = 21
CAP_SYS_PTRACE = 19
CAP_PERFMON = 38


def tgid_of(tid: int) -> int | None:
    tgid = lib.yr_tgid_of(tid)
    return tgid if tgid > 0 else None


def ppid_of(pid: int) -> int | None:
    ppid = lib.yr_ppid_of(pid)
    return ppid if ppid >= 0 else None


def tracer_of(pid: int) -> int:
    """The tid that ptraces pid, 0 for none (or pid gone)."""
    return max(lib.yr_tracer_of(pid), 0)


def is_descendant(ancestor_tgid: int, tid: int) -> bool:
    return lib.yr_is_descendant(ancestor_tgid, tid) == 1


def caller_is_ancestor(caller_tgid: int, tid: int) -> bool:
    """is_descendant(caller_tgid, tid) for a caller (a process under our
    filter), whose walk ends at once for a target older than the caller and
    at the supervisor (neither is ever a caller's descendant:
    csrc/ptrace_fast.c)."""
    return lib.yr_caller_is_ancestor(caller_tgid, tid) == 1


def has_mm(tid: int) -> bool:
    """Does task tid hold an mm? Not a zombie, a kernel thread, nor a thread
    that exited while its process lives on (gone: False)."""
    return lib.yr_task_has_mm(tid) == 1


def parent_threads(ppid: int, child_tgid: int) -> list[int]:
    """The threads of process ppid that may be child_tgid's real parent, the
    thread that forked it (or that it was moved to when that one exited):
    the one whose /proc children list names it, where the kernel keeps such
    lists (CONFIG_PROC_CHILDREN); else every thread of ppid, for a caller
    to require of each what the kernel asks of one. Empty: ppid is gone."""
    try:
        tids = [int(name) for name in os.listdir(f"/proc/{ppid}/task")]
    except (OSError, ValueError):
        return []
    for tid in tids:
        try:
            with open(f"/proc/{ppid}/task/{tid}/children", "rb") as f:
                if str(child_tgid).encode() in f.read().split():
                    return [tid]
        except FileNotFoundError:
            break                   # no such lists here (or the thread is gone)
        except OSError:
            continue
    return tids


def cap_effective(tid: int) -> int | None:
    out = ffi.new("uint64_t *")
    return out[0] if lib.yr_cap_effective(tid, out) == 0 else None


def comm_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().rstrip(b"\n").decode(errors="replace")
    except OSError:
        return "?"


def _ns_of(tid: int, kind: str) -> int | None:
    """The namespace's inode, from the link's text ("user:[4026531837]"):
    a readlink costs less than the stat that follows the link, and asks the
    same permission (ptrace_may_access, READ_FSCREDS)."""
    try:
        text = os.readlink(f"/proc/{tid}/ns/{kind}")
        return int(text[text.index("[") + 1:-1])
    except (OSError, ValueError):
        return None


def userns_of(tid: int) -> int | None:
    return _ns_of(tid, "user")


NS_GET_PARENT = 0xB702        # _IO(0xb7, 0x2)
NS_GET_OWNER_UID = 0xB704    # _IO(0xb7, 0x4)


def ns_capable(caller_ns: int, caller_euid: int | None, has_cap: bool, tid: int) -> bool:
    """The kernel's cap_capable(cred, target_ns, cap): walking up from tid's
    user namespace, the capability counts where the walk meets the caller's
    namespace (has_cap: it is in the caller's effective set), and in a
    namespace whose parent is the caller's and whose owner is the caller's
    euid (the owner of a namespace holds every capability in it)."""
    try:
        fd = os.open(f"/proc/{tid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        for _ in range(33):                    # the kernel nests at most 32 deep
            if os.fstat(fd).st_ino == caller_ns:
                return has_cap
            try:
                parent = fcntl.ioctl(fd, NS_GET_PARENT)
            except OSError:                    # the top, or beyond what we may see
                return False
            owner = None
            if caller_euid is not None:                # None: the owner rule is not asked
                try:
                    owner = struct.unpack("I", fcntl.ioctl(fd, NS_GET_OWNER_UID, b"\0" * 4))[0]
                except OSError:
                    pass
            os.close(fd)
            fd = parent
            if owner is not None and owner == caller_euid and os.fstat(fd).st_ino == caller_ns:
                return True
        return False
    finally:
        os.close(fd)


OWN_USERNS = userns_of(os.getpid())


def capable_over(caller, tid: int, cap: int) -> bool:
    """The kernel's ns_capable(tid's user namespace, cap) for caller: the
    capability held in that namespace or one above it, or ownership (euid) of
    that namespace or of one between it and the caller's."""
    has_cap = caller.has_cap(cap)
    target_ns = None if has_cap else userns_of(tid)
    if not has_cap and target_ns in (OWN_USERNS, None):
        # The most common case, in one look-up: the walk from our namespace
        # up never meets the caller's (ours or one below it: a sandboxed
        # process cannot enter a namespace above ours), so only the
        # capability in effect counts, and there is none.
        return False
    if caller.userns is None:
        return False
    if not has_cap and target_ns == caller.userns:
        return False        # no namespace of the caller's in between
    euid = None if has_cap else caller.creds.euid   # with the cap, ownership adds nothing
    return ns_capable(caller.userns, euid, has_cap, tid)


def caller_pid(caller_tid: int, pid: int) -> int | None:
    """The task a caller names by pid, as a pid of the supervisor's namespace.

    A caller in another pid namespace (unshare -p, a browser's sandbox) means
    a number of its own namespace: the kernel translates it in one ioctl
    (csrc/procinfo.c, NS_GET_PID_FROM_PIDNS). None: no such task, or a kernel
    older than 6.11 that cannot say for a caller of another namespace (fail
    closed, never a scan of every task)."""
    ours = lib.yr_pid_from_caller(caller_tid, pid) if pid > 0 else 0
    return ours if ours > 0 else None


# -- the kernel's own ptrace rule (kernel/ptrace.c, security/commoncap.c) ----------

PTRACE_MODE_FSCREDS = lib.YR_PTRACE_FSCREDS
PTRACE_MODE_REALCREDS = lib.YR_PTRACE_REALCREDS


def kernel_ptrace_refusal(caller, target: int, mode: int, refused: int) -> int:
    """__ptrace_may_access(target, mode) for caller, before any LSM
    (csrc/kptrace.c: the same rule the path engine's gate applies to /proc
    entries). The supervisor may hold more authority than the caller (root,
    or the owner of the sandbox's user namespace): what it performs on
    another process for a caller is first judged here. 0: the kernel would
    allow it; ESRCH: the task is gone (or a zombie), as the kernel says;
    else `refused`, also when a fact is out of reach."""
    rc = lib.yr_kernel_ptrace_allows(caller.tid, target, mode)
    # KERNEL_SETTLES (a target with our root's euid whose mm may be ours):
    # taken as a yes here as ever, though what is performed as the supervisor
    # has no check of the kernel's after it (root inside only).
    if rc in (1, lib.YR_PTRACE_KERNEL_SETTLES):
        return 0
    return errno.ESRCH if rc == -errno.ESRCH else refused
