"""The seccomp filter: only the syscalls (and sub-operations) that some module
in the chain hooks are routed to the supervisor, for every x86 ABI."""
from __future__ import annotations

import tempfile

import pyseccomp as sc

from ._yama import lib

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

SYSCALL_IDS = {
    "ptrace": lib.YR_SYS_PTRACE,
    "prctl": lib.YR_SYS_PRCTL,
    "process_vm_readv": lib.YR_SYS_PROCESS_VM_READV,
    "process_vm_writev": lib.YR_SYS_PROCESS_VM_WRITEV,
    "pidfd_getfd": lib.YR_SYS_PIDFD_GETFD,
    "link": lib.YR_SYS_LINK,
    "linkat": lib.YR_SYS_LINKAT,
    "open": lib.YR_SYS_OPEN,
    "openat": lib.YR_SYS_OPENAT,
    "openat2": lib.YR_SYS_OPENAT2,
    "creat": lib.YR_SYS_CREAT,
    "stat": lib.YR_SYS_STAT,
    "lstat": lib.YR_SYS_LSTAT,
    "newfstatat": lib.YR_SYS_NEWFSTATAT,
    "statx": lib.YR_SYS_STATX,
    "stat64": lib.YR_SYS_STAT64,
    "lstat64": lib.YR_SYS_LSTAT64,
    "fstatat64": lib.YR_SYS_FSTATAT64,
    "access": lib.YR_SYS_ACCESS,
    "faccessat": lib.YR_SYS_FACCESSAT,
    "faccessat2": lib.YR_SYS_FACCESSAT2,
    "execve": lib.YR_SYS_EXECVE,
    "execveat": lib.YR_SYS_EXECVEAT,
    "chdir": lib.YR_SYS_CHDIR,
    "chroot": lib.YR_SYS_CHROOT,
    "truncate": lib.YR_SYS_TRUNCATE,
    "truncate64": lib.YR_SYS_TRUNCATE64,
    "chmod": lib.YR_SYS_CHMOD,
    "fchmodat": lib.YR_SYS_FCHMODAT,
    "fchmodat2": lib.YR_SYS_FCHMODAT2,
    "chown": lib.YR_SYS_CHOWN,
    "chown32": lib.YR_SYS_CHOWN,
    "fchownat": lib.YR_SYS_FCHOWNAT,
    "utimensat": lib.YR_SYS_UTIMENSAT,
    "utimensat_time64": lib.YR_SYS_UTIMENSAT_TIME64,
    "utime": lib.YR_SYS_UTIME,
    "utimes": lib.YR_SYS_UTIMES,
    "futimesat": lib.YR_SYS_FUTIMESAT,
    "getxattr": lib.YR_SYS_GETXATTR,
    "setxattr": lib.YR_SYS_SETXATTR,
    "listxattr": lib.YR_SYS_LISTXATTR,
    "removexattr": lib.YR_SYS_REMOVEXATTR,
    "inotify_add_watch": lib.YR_SYS_INOTIFY_ADD_WATCH,
    "statfs": lib.YR_SYS_STATFS,
    "statfs64": lib.YR_SYS_STATFS,
    "name_to_handle_at": lib.YR_SYS_NAME_TO_HANDLE_AT,
    "open_tree": lib.YR_SYS_OPEN_TREE,
    "symlink": lib.YR_SYS_SYMLINK,
    "symlinkat": lib.YR_SYS_SYMLINKAT,
}
SYSCALL_NAMES = {sys_id: name for name, sys_id in SYSCALL_IDS.items()
                 if name not in ("chown32", "statfs64")}

O_CREAT = 0o100
AT_SYMLINK_FOLLOW = 0x400

# Every call that may follow a trailing symlink (walk.c performs or checks it).
_FOLLOWING = ("open", "openat", "openat2", "creat", "stat", "lstat", "newfstatat", "statx",
              "stat64", "lstat64", "fstatat64", "access", "faccessat", "faccessat2",
              "execve", "execveat", "chdir", "chroot", "truncate", "truncate64", "chmod",
              "fchmodat", "fchmodat2", "chown", "chown32", "fchownat", "utimensat",
              "utimensat_time64", "utime", "utimes", "futimesat", "getxattr", "setxattr",
              "listxattr", "removexattr", "inotify_add_watch", "statfs", "statfs64",
              "open_tree")
# Opens, whatever their flags (openat2's are in memory, creat's are O_CREAT).
_OPENS = [("open", []), ("openat", []), ("openat2", []), ("creat", [])]


def _int_eq(arg: int, value: int) -> sc.Arg:
    """int-typed arguments: the kernel truncates to 32 bits, so must we."""
    return sc.Arg(arg, sc.MASKED_EQ, 0xFFFFFFFF, value)


# hook -> [(syscall, argument comparisons)]; a syscall routed for several hooks
# is routed once per comparison.
ROUTES = {
    "ptrace_access_check": [
        ("ptrace", [sc.Arg(0, sc.EQ, PTRACE_ATTACH)]),   # request is a long: EQ
        ("ptrace", [sc.Arg(0, sc.EQ, PTRACE_SEIZE)]),
        ("process_vm_readv", []),
        ("process_vm_writev", []),
        ("pidfd_getfd", []),
        *_OPENS,                                          # /proc/PID/mem: any path may be it
    ],
    "ptrace_traceme": [("ptrace", [sc.Arg(0, sc.EQ, PTRACE_TRACEME)])],
    "task_prctl": [("prctl", [_int_eq(0, PR_SET_PTRACER)])],
    "path_link": [("link", []), ("linkat", [])],
    "follow_link": [(name, []) for name in _FOLLOWING] + [
        ("linkat", [sc.Arg(4, sc.MASKED_EQ, AT_SYMLINK_FOLLOW, AT_SYMLINK_FOLLOW)]),
        ("name_to_handle_at", [sc.Arg(4, sc.MASKED_EQ, AT_SYMLINK_FOLLOW, AT_SYMLINK_FOLLOW)])],
    "create_in_sticky": [
        ("open", [sc.Arg(1, sc.MASKED_EQ, O_CREAT, O_CREAT)]),
        ("openat", [sc.Arg(2, sc.MASKED_EQ, O_CREAT, O_CREAT)]),
        ("openat2", []),
        ("creat", []),
    ],
    "path_symlink": [("symlink", []), ("symlinkat", [])],
}


def build(hooks: set[str]) -> bytes | None:
    """The BPF program for these hooks, or None when nothing is hooked."""
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
    for name, args in rules:
        f.add_rule(sc.NOTIFY, name, *args)
    with tempfile.TemporaryFile() as out:
        f.export_bpf(out)
        out.seek(0)
        return out.read()


def syscall_table(hooks: set[str]):
    """(audit arch, nr, logical id) for every routed syscall on every ABI."""
    names = {name for hook in hooks for name, _ in ROUTES.get(hook, ())}
    for name in sorted(names):
        for arch, audit_arch in ARCHES:
            nr = sc.resolve_syscall(arch, name)
            if nr >= 0:
                yield audit_arch, nr, SYSCALL_IDS[name]
