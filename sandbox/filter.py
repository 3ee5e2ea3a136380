"""The seccomp filter: only the syscalls (and sub-operations) that some module
in the chain hooks are routed to the supervisor, for every x86 ABI; every
syscall number the project does not know is refused (ENOSYS). docs/syscalls.md
says what becomes of each number on each ABI."""
from __future__ import annotations

import errno
import fcntl
import functools
import os
import struct

import pyseccomp as sc

from ._yama import ffi, lib
from .shield import KERNEL_BOTH, KERNEL_PTRACE, KERNEL_SIGNALS, tables_shared_by_threads_only
from .spawn import SetupError

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003

# (libseccomp arch, the arch the notification reports)
ARCHES = ((sc.Arch.X86_64, AUDIT_ARCH_X86_64),
          (sc.Arch.X86, AUDIT_ARCH_I386),
          (sc.Arch.X32, AUDIT_ARCH_X86_64))   # x32 numbers carry __X32_SYSCALL_BIT

PTRACE_TRACEME = 0
PTRACE_ATTACH = 16
PTRACE_SEIZE = 0x4206
PR_SET_PTRACER = 0x59616D61



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
_WRITE_OPENS = [*((name, [sc.Arg(arg, sc.MASKED_EQ, mask, value)])
                  for name, arg in (("open", 1), ("openat", 2)) for mask, value in _MAY_WRITE),
                ("openat2", []), ("creat", [])]


TRACED = sc.TRACE(0)     # SECCOMP_RET_TRACE: a PTRACE_EVENT_SECCOMP stop for the tracer


def _int_eq(arg: int, value: int) -> sc.Arg:
    """int-typed arguments: the kernel truncates to 32 bits, so must we."""
    return sc.Arg(arg, sc.MASKED_EQ, 0xFFFFFFFF, value)


def _not_self(arg: int) -> sc.Arg:
    """A pid argument other than 0 (the caller itself). Compared on all 64
    bits: a value the kernel truncates to 0 is routed too, and found to be
    the caller's own by the supervisor."""
    return sc.Arg(arg, sc.NE, 0)


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
            *((name, [_int_eq(1, F_SETFL), sc.Arg(2, sc.MASKED_EQ, O_ASYNC, O_ASYNC)])
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
    ("linkat", [sc.Arg(4, sc.MASKED_EQ, AT_SYMLINK_FOLLOW, AT_SYMLINK_FOLLOW)]),
    ("name_to_handle_at", [sc.Arg(4, sc.MASKED_EQ, AT_SYMLINK_FOLLOW, AT_SYMLINK_FOLLOW)]),
    ("sendto", [sc.Arg(4, sc.NE, 0)]),              # an address: not a connected send
    # i386's multiplexer: the address is in memory, so every addressed call
    *[("socketcall", [_int_eq(0, call)]) for call in SOCKETCALL_ADDRESSED]]

# link and linkat, performed for the caller. linkat(fd, "", AT_EMPTY_PATH)
# names only a file the caller opened with its current credentials: the
# supervisor sees the opens that give such files (O_PATH, O_TMPFILE; every
# open while others route them) and the execve that replaces the
# credentials (csrc/tmpfiles.c).
_LINKS = [("link", []), ("linkat", []), ("execve", []), ("execveat", []),
          ("open", [sc.Arg(1, sc.MASKED_EQ, O_PATH, O_PATH)]),
          ("openat", [sc.Arg(2, sc.MASKED_EQ, O_PATH, O_PATH)]),
          ("open", [sc.Arg(1, sc.MASKED_EQ, O_TMPFILE_BIT, O_TMPFILE_BIT)]),
          ("openat", [sc.Arg(2, sc.MASKED_EQ, O_TMPFILE_BIT, O_TMPFILE_BIT)]),
          ("openat2", [])]

# hook -> [(syscall, argument comparisons)]; a syscall routed for several hooks
# is routed once per comparison.
ROUTES = {
    "ptrace_access_check": [
        ("ptrace", [sc.Arg(0, sc.EQ, PTRACE_ATTACH)]),   # request is a long: EQ
        ("ptrace", [sc.Arg(0, sc.EQ, PTRACE_SEIZE)]),
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
    "ptrace_traceme": [("ptrace", [sc.Arg(0, sc.EQ, PTRACE_TRACEME)])],
    "task_prctl": [("prctl", [_int_eq(0, PR_SET_PTRACER)])],
    # execve by a non-leader thread frees the old leader task (Yama's task_free)
    "task_free": [("execve", []), ("execveat", [])],
    # calls that act on another process: routed for the guard of yama-run's
    # own processes always, for containment when it is on (sandbox/guard.py)
    "task_kill": _SIGNALS,
    "task_prlimit": [("prlimit64", [_not_self(0), sc.Arg(2, sc.NE, 0)])],   # setting a limit
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
                           *(("ioctl", [_int_eq(1, cmd), sc.Arg(2, sc.EQ, 0)])
                             for cmd in PIDFD_GET_NAMESPACE)],
    "path_link": _LINKS,
    "follow_link": _WALKED,
    "create_in_sticky": [
        ("open", [sc.Arg(1, sc.MASKED_EQ, O_CREAT, O_CREAT)]),
        ("openat", [sc.Arg(2, sc.MASKED_EQ, O_CREAT, O_CREAT)]),
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
                        ("unshare", [sc.Arg(0, sc.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER)]),
                        ("unshare", [sc.Arg(0, sc.MASKED_EQ, CLONE_NEWNS, CLONE_NEWNS)])],
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
    (sc.ERRNO(errno.EPERM), "clone", [sc.Arg(0, sc.MASKED_EQ, CLONE_UNTRACED, CLONE_UNTRACED)]),
    (sc.ERRNO(errno.ENOSYS), "clone3", []),
    (sc.ERRNO(errno.EBUSY), "seccomp", [_int_eq(0, SECCOMP_SET_MODE_FILTER),
                                        sc.Arg(1, sc.MASKED_EQ, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                                               SECCOMP_FILTER_FLAG_NEW_LISTENER)]),
]


def build(hooks: set[str], kernel: int = KERNEL_BOTH, action: int = sc.NOTIFY) -> bytes | None:
    """The BPF program for these hooks, or None when nothing is hooked.
    kernel: what Landlock's domain refuses by itself (sandbox/shield.py's
    KERNEL_*); the hooks keep the rest out of reach.
    action: sc.NOTIFY (user-notify) or TRACED (the ptrace backend).

    Two parts, run one after the other: the guard (every number the project
    does not know answers ENOSYS; the numbers libseccomp cannot name get
    their action here), then libseccomp's program of the routes."""
    rules = [rule for hook in sorted(hooks) for rule in ROUTES.get(hook, ())]
    # A syscall routed whatever its arguments needs no conditional rule too.
    always = {name for name, args in rules if not args}
    rules = [(name, args) for name, args in dict.fromkeys(
        (name, tuple(args)) for name, args in rules) if not args or name not in always]
    if not rules:
        return None
    f = sc.SyscallFilter(sc.ALLOW)
    for arch, _ in ARCHES[1:]:
        f.add_arch(arch)
    f.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)
    # A binary tree over the syscall numbers, not a chain: an unrouted call
    # (every syscall meets this filter) passes about 30 instructions, not 110.
    f.set_attr(sc.Attr.CTL_OPTIMIZE, 2)
    unnamed_actions = {}
    for name, args in rules:
        if name in UNNAMED:
            unnamed_actions[name] = action       # by number, in the guard (no arguments)
        else:
            f.add_rule(action, name, *args)
    for extra, name, args in hostile_rules(hooks, kernel):
        f.add_rule(action if extra == sc.NOTIFY else extra, name, *args)
    for guard_action, name, args in TRACE_GUARDS if action == TRACED else ():
        f.add_rule(guard_action, name, *args)
    return guard(unnamed_actions) + exported(f)


# The kernel loads at most BPF_MAXINSNS (4096) instructions of 8 bytes: a
# pipe this large holds any program the kernel would accept.
EXPORT_PIPE_SIZE = 64 * 1024


class ExportError(SetupError):
    """libseccomp's program could not be had whole: said, exit 125."""


def exported(f: sc.SyscallFilter) -> bytes:
    """libseccomp's BPF program, whole, or ExportError.

    Into a pipe, not a file: the user's RLIMIT_FSIZE, meant for the program,
    cut the write to a temporary file, and libseccomp (2.5) never checks how
    much of its single write() went out, so a cut program was loaded as if
    whole. A pipe has no file size limit. Its ends are non-blocking, so a
    program larger than the pipe cannot hold this thread forever: the write
    then stops where the pipe is full, and a pipe found full may hold a cut
    program, which is refused (fail closed). Nothing else writes to the
    pipe: both ends are ours alone, close-on-exec, and closed here."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        try:
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, EXPORT_PIPE_SIZE)
        except OSError:
            pass                # over the user's pipe allowance: the check below judges
        capacity = fcntl.fcntl(write_end, fcntl.F_GETPIPE_SZ)
        try:
            f.export_bpf(_Descriptor(write_end))
        except (OSError, RuntimeError) as exc:
            raise ExportError(f"cannot export the seccomp filter: {exc}") from None
        program = _drain(read_end)
    finally:
        os.close(read_end)
        os.close(write_end)
    if len(program) >= capacity or len(program) % 8 or not program:
        raise ExportError(f"cannot export the seccomp filter whole ({len(program)} bytes "
                          f"read, the pipe holds {capacity})")
    return program


class _Descriptor:
    """What export_bpf needs of a file: its descriptor."""

    def __init__(self, fd: int):
        self._fd = fd

    def fileno(self) -> int:
        return self._fd


def _drain(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, EXPORT_PIPE_SIZE)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _number(arch: int, name: str) -> int:
    """name's number on this ABI (x32's with its bit), or a negative one.
    i386's socket calls have two: socketcall's (libseccomp names it with a
    negative pseudo number, and routes socketcall) and the direct one of
    Linux 4.3 (connect is 362), which libseccomp routes too but will not give
    for the name: found the other way round."""
    if name in UNNAMED:
        return UNNAMED[name] | (X32_SYSCALL_BIT if arch == sc.Arch.X32 else 0)
    nr = sc.resolve_syscall(arch, name)
    if nr < 0 and arch == sc.Arch.X86:
        return _direct_i386().get(name, nr)
    return nr


@functools.cache
def _direct_i386() -> dict[str, int]:
    """i386's syscall names, by number, as libseccomp names the numbers."""
    names = {}
    for nr in range(_HIGHEST):
        try:
            names.setdefault(sc.resolve_syscall(sc.Arch.X86, nr).decode(), nr)
        except ValueError:
            continue
    return names


def syscall_table(hooks: set[str], kernel: int = KERNEL_BOTH):
    """(audit arch, nr, logical id) for every routed syscall on every ABI."""
    names = {name for hook in hooks for name, _ in ROUTES.get(hook, ())}
    names |= {name for action, name, _ in hostile_rules(hooks, kernel)
              if action == sc.NOTIFY}
    for name in sorted(names):
        for arch, audit_arch in ARCHES:
            nr = _number(arch, name)
            if nr >= 0:
                yield audit_arch, nr, SYSCALL_IDS[name]


# -- every syscall accounted for -----------------------------------------------------

X32_SYSCALL_BIT = 0x40000000
# This kernel's (6.18) syscalls that libseccomp 2.5.4 cannot name: numbered
# alike on x86-64 and i386 (one table from 424 on), x32 with its bit.
UNNAMED = {"statmount": 457, "listmount": 458, "lsm_get_self_attr": 459,
           "lsm_set_self_attr": 460, "lsm_list_modules": 461, "mseal": 462,
           "setxattrat": 463, "getxattrat": 464, "listxattrat": 465, "removexattrat": 466,
           "open_tree_attr": 467, "file_getattr": 468, "file_setattr": 469}
_HIGHEST = 1024          # the tables libseccomp knows end well below this


def known_numbers(arch: int) -> set[int]:
    """Every number the project knows on this ABI: those libseccomp can name,
    and UNNAMED (x32's with its bit)."""
    bit = X32_SYSCALL_BIT if arch == sc.Arch.X32 else 0
    known = set()
    for nr in range(_HIGHEST):
        try:
            sc.resolve_syscall(arch, nr | bit)
        except ValueError:
            continue
        known.add(nr | bit)
    return known | {nr | bit for nr in UNNAMED.values()}


def _intervals(numbers: set[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for nr in sorted(numbers):
        if out and nr == out[-1][1] + 1:
            out[-1] = (out[-1][0], nr)
        else:
            out.append((nr, nr))
    return out


class _Asm:
    """Classic BPF laid out top to bottom with forward labels only: a test
    jumps one instruction (to a JA) or none, so conditional jumps never need
    more than their 8-bit reach; a JA's 32-bit offset reaches any label."""
    LD_W_ABS, JA, JEQ, JGT, JGE, RET = 0x20, 0x05, 0x15, 0x25, 0x35, 0x06

    def __init__(self):
        self.insns: list[list[int]] = []
        self.labels: dict[str, int] = {}
        self.fixups: list[tuple[int, str]] = []

    def ld(self, offset: int) -> None:
        self.insns.append([self.LD_W_ABS, 0, 0, offset])

    def goto_if(self, op: int, k: int, label: str) -> None:
        self.insns.append([op, 0, 1, k])         # true: the JA below; false: past it
        self.goto(label)

    def goto(self, label: str) -> None:
        self.fixups.append((len(self.insns), label))
        self.insns.append([self.JA, 0, 0, 0])

    def ret(self, action: int) -> None:
        self.insns.append([self.RET, 0, 0, action])

    def label(self, name: str) -> None:
        self.labels[name] = len(self.insns)

    def assemble(self) -> bytes:
        for at, name in self.fixups:
            target = self.labels[name]
            assert target > at, f"BPF jumps only forward: {name}"
            self.insns[at][3] = target - at - 1
        return b"".join(struct.pack("<HBBI", *insn) for insn in self.insns)


def _number_block(asm: _Asm, tag: str, known: set[int], special: dict[int, int]) -> None:
    """A holds the syscall number: go on to the routes ("routes") if it is
    known, answer ENOSYS if not; special numbers get their own action."""
    for nr, act in sorted(special.items()):
        asm.goto_if(_Asm.JEQ, nr, f"{tag}-act-{act}")
    for i, (lo, hi) in enumerate(_intervals(known)):
        asm.goto_if(_Asm.JGT, hi, f"{tag}-above-{i}")
        asm.goto_if(_Asm.JGE, lo, "routes")
        asm.goto(f"{tag}-enosys")
        asm.label(f"{tag}-above-{i}")
    asm.label(f"{tag}-enosys")
    asm.ret(sc.ERRNO(errno.ENOSYS))
    for act in sorted(set(special.values())):
        asm.label(f"{tag}-act-{act}")
        asm.ret(act)


def guard(unnamed_actions: dict[str, int]) -> bytes:
    """The first part of the filter: any other arch is killed; on x86-64,
    x32 and i386, a number the project does not know answers ENOSYS (a newer
    kernel's path-taking call can never pass unseen), and the numbers of
    UNNAMED get the action asked (the routes of those libseccomp cannot add);
    every other known number goes on to the routes program appended after."""
    asm = _Asm()
    asm.ld(4)                                    # seccomp_data.arch
    asm.goto_if(_Asm.JEQ, AUDIT_ARCH_X86_64, "x86_64")
    asm.goto_if(_Asm.JEQ, AUDIT_ARCH_I386, "i386")
    asm.ret(sc.KILL_PROCESS)
    for arch, tag in ((sc.Arch.X86_64, "x86_64"), (sc.Arch.X32, "x32"), (sc.Arch.X86, "i386")):
        asm.label(tag)
        if tag != "x32":
            asm.ld(0)                            # seccomp_data.nr
        if tag == "x86_64":
            asm.goto_if(_Asm.JGE, X32_SYSCALL_BIT, "x32")
        bit = X32_SYSCALL_BIT if tag == "x32" else 0
        special = {UNNAMED[name] | bit: act for name, act in unnamed_actions.items()}
        _number_block(asm, tag, known_numbers(arch) - set(special), special)
    asm.label("routes")
    return asm.assemble()


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
    (sc.ERRNO(errno.EPERM), "clone",
     [sc.Arg(0, sc.MASKED_EQ, CLONE_FILES | CLONE_THREAD, CLONE_FILES)]),
    (sc.ERRNO(errno.ENOSYS), "clone3", []),
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
    yield sc.ERRNO(errno.EIO), "ioctl", [_int_eq(1, TIOCSTI)]
    # open_by_handle_at names its file by a handle, never by a path the gate
    # could judge: root inside (CAP_DAC_READ_SEARCH) froze a cgroup through
    # its cgroup.freeze's handle where the gate refuses the path. Refused for
    # writing, with the kernel's errno for a caller without that capability.
    for mask, value in _MAY_WRITE:
        yield sc.ERRNO(errno.EPERM), "open_by_handle_at", [sc.Arg(2, sc.MASKED_EQ, mask, value)]
    guarded = [*GUARDED,
               *(() if kernel & KERNEL_SIGNALS else ("task_kill",)),
               *(() if kernel & KERNEL_PTRACE else ("ptrace_access_check", "ptrace_proc_open",
                                                    "ptrace_read_access"))]
    # Without Landlock's domain every open is routed for the guard (root
    # inside holds CAP_SYS_PTRACE over the supervisor: /proc/SUP/mem), so an
    # io_uring OPENAT would reach yama-run unseen: closed then too.
    if path_protected(hooks) or "ptrace_proc_open" in guarded:
        for name in IO_URING:
            yield sc.ERRNO(errno.EPERM), name, []
        # The supervisor then performs the program's opens (and its symlinks,
        # links, truncates...) outside any Landlock domain the program would
        # give itself, which would confine nothing done for it: the program
        # is told Landlock is off, as the kernel says when it is disabled at
        # boot, and its own fallback applies (docs/hostile.md).
        for name in LANDLOCK_SELF:
            yield sc.ERRNO(errno.EOPNOTSUPP), name, []
    if tables_shared_by_threads_only(hooks, kernel):
        yield from SHARED_TABLE_GUARDS
    for hook in guarded:
        if hook not in hooks:
            for name, args in ROUTES[hook]:
                yield sc.NOTIFY, name, args
