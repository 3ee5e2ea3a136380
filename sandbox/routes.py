"""What the seccomp filter routes, as plain data: each hook's syscalls and
argument comparisons (ROUTES), the calls closed around them against a
hostile program (hostile_rules), and the one registry of routed syscalls
(csrc/syscalls.def, compiled in). sandbox/filter.py builds the BPF program
from these with libseccomp.

No pyseccomp here: the supervisor reads these tables while the program runs
(a module's hooks checked, a live change's routes compared, a call named),
and importing pyseccomp runs /sbin/ldconfig twice (ctypes.util's
find_library), which would make the supervisor fork a process of its own
beside the program's, holding a pipe, for the reaper to meet. Comparisons
and actions are the kernel's and libseccomp's numbers, the same values
pyseccomp gives (tests/test_routes.py)."""
from __future__ import annotations

import errno
from typing import NamedTuple

from ._yama import ffi, lib
from .shield import KERNEL_PTRACE, KERNEL_SIGNALS, tables_shared_by_threads_only

# libseccomp's comparisons (enum scmp_compare)
NE, EQ, MASKED_EQ = 1, 4, 7


class Cmp(NamedTuple):
    """An argument comparison, as libseccomp's seccomp_rule_add takes it:
    argument arg compared by op with a (MASKED_EQ: arg & a == b)."""
    arg: int
    op: int
    a: int
    b: int = 0


# The routes' return values (SECCOMP_RET_*, linux/seccomp.h)
NOTIFY = 0x7FC00000             # SECCOMP_RET_USER_NOTIF: to the supervisor


def ERRNO(err: int) -> int:
    return 0x00050000 | (err & 0xFFFF)


def TRACE(data: int) -> int:
    return 0x7FF00000 | (data & 0xFFFF)


def _registry() -> tuple[dict[str, int], dict[int, str], dict[str, int]]:
    """From the one registry (csrc/syscalls.def, compiled in): every routed
    syscall name (aliases included) -> its logical id; id -> its name; and
    name -> who serves it (lib.YR_SERVE_*)."""
    ids, names, servers = {}, {}, {}
    for sys_id in range(lib.YR_SYS_NONE + 1, lib.YR_SYS_COUNT):
        all_names = ffi.string(lib.yr_sys_names(sys_id)).decode().split()
        names[sys_id] = all_names[0]
        for name in all_names:
            ids[name] = sys_id
            servers[name] = lib.yr_sys_server(sys_id)
    return ids, names, servers


SYSCALL_IDS, SYSCALL_NAMES, SERVERS = _registry()

PTRACE_TRACEME = 0
PTRACE_ATTACH = 16
PTRACE_SEIZE = 0x4206
PR_SET_PTRACER = 0x59616D61

O_ACCMODE, O_WRONLY, O_RDWR = 0o3, 0o1, 0o2
O_CREAT = 0o100
O_TRUNC = 0o1000
O_PATH = 0o10000000
CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
O_TMPFILE_BIT = 0o20000000        # __O_TMPFILE (O_TMPFILE adds O_DIRECTORY)
AT_SYMLINK_FOLLOW = 0x400

# Every call that may follow a trailing symlink (the path engine performs or
# checks it), and the AF_UNIX path addresses (connect and sendto follow a
# trailing link; bind only walks to its parent).
_FOLLOWING = ("open", "openat", "openat2", "creat", "stat", "lstat", "newfstatat", "statx",
              "stat64", "lstat64", "fstatat64", "access", "faccessat", "faccessat2",
              "execve", "execveat", "chdir", "chroot", "truncate", "truncate64", "chmod",
              "fchmodat", "fchmodat2", "chown", "chown32", "fchownat", "utimensat",
              "utimensat_time64", "utime", "utimes", "futimesat", "getxattr", "setxattr",
              "listxattr", "removexattr", "inotify_add_watch", "fanotify_mark", "statfs",
              "statfs64",
              "open_tree", "setxattrat", "getxattrat", "listxattrat", "removexattrat",
              "open_tree_attr", "file_getattr", "file_setattr",
              "connect", "bind", "sendmsg", "sendmmsg",
              # the mount family and the others that follow a trailing link
              # in a path they name (csrc/named.c, decode.c)
              "mount", "umount2", "umount", "pivot_root", "move_mount", "fspick",
              "mount_setattr", "quotactl", "acct", "swapon", "swapoff", "oldstat",
              # and those that follow one only before a trailing slash: the
              # writes (lgetxattr, llistxattr are left alone: ls -l calls them
              # for every name it lists)
              "oldlstat", "lchown", "lchown32", "lsetxattr", "lremovexattr")
SOCKETCALL_ADDRESSED = (2, 3, 11, 16, 20)   # i386 socketcall: BIND, CONNECT, SENDTO, SENDMSG, SENDMMSG
# Opens, whatever their flags (openat2's are in memory, creat's are O_CREAT).
_OPENS = [("open", []), ("openat", []), ("openat2", []), ("creat", [])]
# Opens that may write: an access mode other than O_RDONLY (3, both, is
# checked for reading and writing), or O_TRUNC; openat2 whole, creat always.
_MAY_WRITE = ((O_ACCMODE, O_WRONLY), (O_ACCMODE, O_RDWR), (O_ACCMODE, O_ACCMODE),
              (O_TRUNC, O_TRUNC))
_WRITE_OPENS = [*((name, [Cmp(arg, MASKED_EQ, mask, value)])
                  for name, arg in (("open", 1), ("openat", 2)) for mask, value in _MAY_WRITE),
                ("openat2", []), ("creat", [])]


TRACED = TRACE(0)     # SECCOMP_RET_TRACE: a PTRACE_EVENT_SECCOMP stop for the tracer


def _int_eq(arg: int, value: int) -> Cmp:
    """int-typed arguments: the kernel truncates to 32 bits, so must we."""
    return Cmp(arg, MASKED_EQ, 0xFFFFFFFF, value)


def _not_self(arg: int) -> Cmp:
    """A pid argument other than 0 (the caller itself). Compared on all 64
    bits: a value the kernel truncates to 0 is routed too, and found to be
    the caller's own by the supervisor."""
    return Cmp(arg, NE, 0)


F_SETOWN, F_SETOWN_EX, F_SETFL = 8, 15, 4
FIOSETOWN, SIOCSPGRP, FIOASYNC = 0x8901, 0x8902, 0x5452
O_ASYNC = 0o20000
TIOCSTI = 0x5412
# PIDFD_GET_{CGROUP,IPC,MNT,NET,PID,PID_FOR_CHILDREN,TIME,TIME_FOR_CHILDREN,
# USER,UTS}_NAMESPACE: _IO(0xFF, 1..10) (linux/pidfd.h, Linux 6.11)
PIDFD_GET_NAMESPACE = tuple(0xFF00 | n for n in range(1, 11))
KILL_FAMILY = ("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
               "pidfd_send_signal")
# A signal's route: the kill family, and file owners (F_SETOWN...: the kernel
# signals them on I/O). Turning O_ASYNC on names an owner too: a terminal
# makes its foreground process group the owner (tty_fasync).
_SIGNALS = [*((name, []) for name in KILL_FAMILY),
            *((name, [_int_eq(1, cmd)]) for name in ("fcntl", "fcntl64")
              for cmd in (F_SETOWN, F_SETOWN_EX)),
            *((name, [_int_eq(1, F_SETFL), Cmp(2, MASKED_EQ, O_ASYNC, O_ASYNC)])
              for name in ("fcntl", "fcntl64")),
            *(("ioctl", [_int_eq(1, cmd)]) for cmd in (FIOSETOWN, SIOCSPGRP, FIOASYNC))]

FSCONFIG_SET_STRING, FSCONFIG_SET_PATH, FSCONFIG_SET_PATH_EMPTY = 1, 3, 4
BPF_OBJ_GET = 7
# The calls whose path may follow a trailing link, walked by the supervisor.
_WALKED = [(name, []) for name in _FOLLOWING] + [
    # overlayfs's layers, a block filesystem's devices (csrc/named.c)
    *(("fsconfig", [_int_eq(1, cmd)])
      for cmd in (FSCONFIG_SET_STRING, FSCONFIG_SET_PATH, FSCONFIG_SET_PATH_EMPTY)),
    ("bpf", [_int_eq(0, BPF_OBJ_GET)]),              # a pinned object's path (csrc/named.c)
    ("linkat", [Cmp(4, MASKED_EQ, AT_SYMLINK_FOLLOW, AT_SYMLINK_FOLLOW)]),
    ("name_to_handle_at", [Cmp(4, MASKED_EQ, AT_SYMLINK_FOLLOW, AT_SYMLINK_FOLLOW)]),
    ("sendto", [Cmp(4, NE, 0)]),              # an address: not a connected send
    # i386's multiplexer: the address is in memory, so every addressed call
    *[("socketcall", [_int_eq(0, call)]) for call in SOCKETCALL_ADDRESSED]]

# link and linkat, performed for the caller. linkat(fd, "", AT_EMPTY_PATH)
# names only a file the caller opened with its current credentials: the
# supervisor sees the opens that give such files (O_PATH, O_TMPFILE; every
# open while others route them) and the execve that replaces the
# credentials (csrc/tmpfiles.c).
_LINKS = [("link", []), ("linkat", []), ("execve", []), ("execveat", []),
          ("open", [Cmp(1, MASKED_EQ, O_PATH, O_PATH)]),
          ("openat", [Cmp(2, MASKED_EQ, O_PATH, O_PATH)]),
          ("open", [Cmp(1, MASKED_EQ, O_TMPFILE_BIT, O_TMPFILE_BIT)]),
          ("openat", [Cmp(2, MASKED_EQ, O_TMPFILE_BIT, O_TMPFILE_BIT)]),
          ("openat2", [])]

# hook -> [(syscall, argument comparisons)]; a syscall routed for several hooks
# is routed once per comparison.
ROUTES = {
    "ptrace_access_check": [
        ("ptrace", [Cmp(0, EQ, PTRACE_ATTACH)]),   # request is a long: EQ
        ("ptrace", [Cmp(0, EQ, PTRACE_SEIZE)]),
        ("process_vm_readv", []),
        ("process_vm_writev", []),
        ("pidfd_getfd", []),
        ("perf_event_open", [_not_self(1)]),              # ATTACH mode with attr.sigtrap
    ],
    # opens, so that those of /proc/PID entries checked in ATTACH mode (mem...)
    # are asked of ptrace_access_check: any path may be one
    "ptrace_proc_open": _OPENS,
    # Every walked call (readlink, symlink and link too), so that an
    # outsider's /proc/PID links (fd/N, cwd, root, exe, ns/*: PTRACE_MODE_READ)
    # are judged wherever a path passes one (chdir into /proc/PID/root, then a
    # relative open; a stat through it; readlink of it): only where the kernel
    # would let a program pass them (control.routed_hooks)
    "ptrace_proc_path": [*_WALKED, *((name, []) for name in (
        "readlink", "readlinkat", "symlink", "symlinkat", "link", "linkat"))],
    "ptrace_traceme": [("ptrace", [Cmp(0, EQ, PTRACE_TRACEME)])],
    "task_prctl": [("prctl", [_int_eq(0, PR_SET_PTRACER)])],
    # execve by a non-leader thread frees the old leader task (Yama's task_free)
    "task_free": [("execve", []), ("execveat", [])],
    # calls that act on another process: routed for the guard of yama-run's
    # own processes always, for containment when it is on (sandbox/guard.py)
    "task_kill": _SIGNALS,
    "task_prlimit": [("prlimit64", [_not_self(0), Cmp(2, NE, 0)])],   # setting a limit
    "task_setnice": [("setpriority", [])],
    "task_setioprio": [("ioprio_set", [])],
    "task_setscheduler": [(name, [_not_self(0)]) for name in (
        "sched_setaffinity", "sched_setscheduler", "sched_setparam", "sched_setattr")],
    "task_movememory": [("migrate_pages", [_not_self(0)]), ("move_pages", [_not_self(0)]),
                        ("process_madvise", []), ("process_mrelease", [])],
    "perf_event_open": [("perf_event_open", [_not_self(1)])],
    # PTRACE_MODE_READ accesses by pid or pidfd that have no /proc path for
    # the gate to judge: the namespaces of a process (pidfd ioctls, whose
    # argument must be 0, and setns by pidfd), kcmp, get_robust_list
    "ptrace_read_access": [("kcmp", []), ("get_robust_list", [_not_self(0)]), ("setns", []),
                           *(("ioctl", [_int_eq(1, cmd), Cmp(2, EQ, 0)])
                             for cmd in PIDFD_GET_NAMESPACE)],
    "path_link": _LINKS,
    "follow_link": _WALKED,
    "create_in_sticky": [
        ("open", [Cmp(1, MASKED_EQ, O_CREAT, O_CREAT)]),
        ("openat", [Cmp(2, MASKED_EQ, O_CREAT, O_CREAT)]),
        ("openat2", []),
        ("creat", []),
    ],
    # and link, linkat: a new name for a symlink inode is a symlink created
    # in that directory (csrc/link.c)
    "path_symlink": [("symlink", []), ("symlinkat", []), *_LINKS],
    # a cgroup file opened for writing (cgroup.kill, cgroup.freeze, a limit,
    # cgroup.procs) acts on every process of its cgroup: the gate judges it
    # (csrc/gate.c), contained; in every mode every open is routed anyway
    # where no Landlock domain is (hostile_rules)
    "cgroup_write": _WRITE_OPENS,
    # a binfmt_misc file opened for writing: a rule's interpreter is opened
    # by the kernel with no call to walk (csrc/gate.c)
    "binfmt_write": _WRITE_OPENS,
    # Not a module's (NOTICES: routed whenever a filter is installed): the
    # supervisor's notice of a setuid program run without its privilege
    # (no_new_privs), and of what its identity cache cannot see otherwise
    # (csrc/caller.c): a change of the caller's supplementary groups or user
    # namespace, and a root moved (which also ends the keeping of roots).
    "exec_notice": [("execve", []), ("execveat", [])],
    "identity_notice": [("setgroups", []), ("setgroups32", []), ("setns", []),
                        ("chroot", []), ("pivot_root", []),
                        ("unshare", [Cmp(0, MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER)]),
                        ("unshare", [Cmp(0, MASKED_EQ, CLONE_NEWNS, CLONE_NEWNS)])],
}
NOTICES = frozenset({"exec_notice", "identity_notice"})

# Under TRACED no task may leave the tracer's sight. A child cloned with
# CLONE_UNTRACED is not auto-attached (and a sandboxed debugger could become
# its tracer and answer its hooked calls); clone3 hides its flags from BPF
# (libc falls back to clone on ENOSYS); a user-notify filter of the program's
# own would take precedence over TRACE (EBUSY, as under the notify backend,
# where our listener is already in the chain). Integer arguments only.
CLONE_UNTRACED = 0x00800000
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
TRACE_GUARDS = [
    (ERRNO(errno.EPERM), "clone", [Cmp(0, MASKED_EQ, CLONE_UNTRACED, CLONE_UNTRACED)]),
    (ERRNO(errno.ENOSYS), "clone3", []),
    (ERRNO(errno.EBUSY), "seccomp", [_int_eq(0, SECCOMP_SET_MODE_FILTER),
                                        Cmp(1, MASKED_EQ, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                                               SECCOMP_FILTER_FLAG_NEW_LISTENER)]),
]


# -- against a hostile program (issue 5) ------------------------------------------

# io_uring performs LINKAT, SYMLINKAT, OPENAT, STATX... without a syscall the
# filter sees. EPERM is what the kernel itself answers with io_uring_disabled.
IO_URING = ("io_uring_setup", "io_uring_enter", "io_uring_register")
# Without Landlock's domain, a setns by pidfd is continued only once the
# caller's descriptor table is found unshared (guard.py's tables_shared),
# since the kernel takes the descriptor again from that table. Listing every
# task that might share it could not keep up with a relay of processes, each
# cloned with CLONE_FILES and exiting (a review's harness won 3 of 200 under
# load), so a table is shared only by threads here: a process is not cloned
# with another's table (EPERM), and clone3, whose flags BPF cannot see,
# answers ENOSYS (libc falls back to clone). io_uring's workers, which share
# it too, are refused with io_uring (hostile_rules). Integer arguments only.
CLONE_FILES, CLONE_THREAD = 0x00000400, 0x00010000
SHARED_TABLE_GUARDS = (
    (ERRNO(errno.EPERM), "clone",
     [Cmp(0, MASKED_EQ, CLONE_FILES | CLONE_THREAD, CLONE_FILES)]),
    (ERRNO(errno.ENOSYS), "clone3", []),
)

# A Landlock domain of the program's own (landlock_add_rule needs a ruleset)
LANDLOCK_SELF = ("landlock_create_ruleset", "landlock_restrict_self")
PATH_HOOK_PREFIXES = ("path_", "follow_link", "create_in_sticky")

# Calls that act on another process that Landlock's scopes do not cover: the
# guard refuses those aimed at yama-run's own processes, in every mode.
GUARDED = ("task_prlimit", "task_setnice", "task_setioprio", "task_setscheduler",
           "task_movememory", "perf_event_open")


def path_protected(hooks: set[str]) -> bool:
    """A path protection, or the judging of opens of /proc/PID/mem: io_uring's
    OPENAT would reach a sibling's memory unseen."""
    return any(hook.startswith(PATH_HOOK_PREFIXES) for hook in hooks) \
        or "ptrace_proc_open" in hooks or "cgroup_write" in hooks or "binfmt_write" in hooks


def hostile_rules(hooks: set[str], kernel: int):
    """(action, syscall, argument comparisons) that close the paths around
    the filter: io_uring while a path protection (or the /proc/PID/mem check)
    is on; the calls that act on another process by pid, which Landlock does
    not cover, always (GUARDED); without Landlock's signal scope, the signals
    (kill family, file owners); and without its domain, every ptrace-class
    access, whatever the chain hooks (the PTRACE_MODE_READ ones too, so that
    containment can be turned on live). The supervisor refuses those aimed at
    yama-run's own processes (sandbox/guard.py)."""
    # TIOCSTI pushes input into the terminal the program shares with the
    # user's shell, which runs it outside the sandbox once yama-run returns
    # (a `yama-run --change-running ... --set ...` among it): refused, root
    # inside too, with the kernel's errno under dev.tty.legacy_tiocsti=0.
    yield ERRNO(errno.EIO), "ioctl", [_int_eq(1, TIOCSTI)]
    # open_by_handle_at names its file by a handle, never by a path the gate
    # could judge: root inside (CAP_DAC_READ_SEARCH) froze a cgroup through
    # its cgroup.freeze's handle where the gate refuses the path. Refused for
    # writing, with the kernel's errno for a caller without that capability.
    for mask, value in _MAY_WRITE:
        yield ERRNO(errno.EPERM), "open_by_handle_at", [Cmp(2, MASKED_EQ, mask, value)]
    guarded = [*GUARDED,
               *(() if kernel & KERNEL_SIGNALS else ("task_kill",)),
               *(() if kernel & KERNEL_PTRACE else ("ptrace_access_check", "ptrace_proc_open",
                                                    "ptrace_read_access"))]
    # Without Landlock's domain every open is routed for the guard (root
    # inside holds CAP_SYS_PTRACE over the supervisor: /proc/SUP/mem), so an
    # io_uring OPENAT would reach yama-run unseen: closed then too.
    if path_protected(hooks) or "ptrace_proc_open" in guarded:
        for name in IO_URING:
            yield ERRNO(errno.EPERM), name, []
        # The supervisor then performs the program's opens (and its symlinks,
        # links, truncates...) outside any Landlock domain the program would
        # give itself, which would confine nothing done for it: the program
        # is told Landlock is off, as the kernel says when it is disabled at
        # boot, and its own fallback applies (docs/hostile.md).
        for name in LANDLOCK_SELF:
            yield ERRNO(errno.EOPNOTSUPP), name, []
    if tables_shared_by_threads_only(hooks, kernel):
        yield from SHARED_TABLE_GUARDS
    for hook in guarded:
        if hook not in hooks:
            for name, args in ROUTES[hook]:
                yield NOTIFY, name, args
