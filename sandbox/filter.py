"""The seccomp filter: only the syscalls (and sub-operations) that some module
in the chain hooks are routed to the supervisor, for every x86 ABI."""
from __future__ import annotations

import errno
import tempfile

import pyseccomp as sc

from ._yama import ffi, lib

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


TRACED = sc.TRACE(0)     # SECCOMP_RET_TRACE: a PTRACE_EVENT_SECCOMP stop for the tracer


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
    # Not a module's: the supervisor's notice of a setuid program run without
    # its privilege (no_new_privs), routed whenever a filter is installed.
    "exec_notice": [("execve", []), ("execveat", [])],
}

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


def build(hooks: set[str], kernel_shield: bool = True, action: int = sc.NOTIFY) -> bytes | None:
    """The BPF program for these hooks, or None when nothing is hooked.
    kernel_shield: Landlock keeps the supervisor out of reach (else hooks do).
    action: sc.NOTIFY (user-notify) or TRACED (the ptrace backend)."""
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
        f.add_rule(action, name, *args)
    for extra, name, args in hostile_rules(hooks, kernel_shield):
        f.add_rule(action if extra == sc.NOTIFY else extra, name, *args)
    for guard, name, args in TRACE_GUARDS if action == TRACED else ():
        f.add_rule(guard, name, *args)
    with tempfile.TemporaryFile() as out:
        f.export_bpf(out)
        out.seek(0)
        return out.read()


def syscall_table(hooks: set[str], kernel_shield: bool = True):
    """(audit arch, nr, logical id) for every routed syscall on every ABI."""
    names = {name for hook in hooks for name, _ in ROUTES.get(hook, ())}
    names |= {name for action, name, _ in hostile_rules(hooks, kernel_shield)
              if action == sc.NOTIFY}
    for name in sorted(names):
        for arch, audit_arch in ARCHES:
            nr = sc.resolve_syscall(arch, name)
            if nr >= 0:
                yield audit_arch, nr, SYSCALL_IDS[name]


# -- against a hostile program (issue 5) ------------------------------------------

# io_uring performs LINKAT, SYMLINKAT, OPENAT, STATX... without a syscall the
# filter sees. EPERM is what the kernel itself answers with io_uring_disabled.
IO_URING = ("io_uring_setup", "io_uring_enter", "io_uring_register")
PATH_HOOK_PREFIXES = ("path_", "follow_link", "create_in_sticky")

KILL_FAMILY = ("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
               "pidfd_send_signal")
F_SETOWN, F_SETOWN_EX = 8, 15
FIOSETOWN, SIOCSPGRP = 0x8901, 0x8902


def path_protected(hooks: set[str]) -> bool:
    """A path protection, or ptrace_access_check, which also judges opens of
    /proc/PID/mem: io_uring's OPENAT would reach a sibling's memory unseen."""
    return any(hook.startswith(PATH_HOOK_PREFIXES) for hook in hooks) \
        or "ptrace_access_check" in hooks


def hostile_rules(hooks: set[str], kernel_shield: bool):
    """(action, syscall, argument comparisons) that close the paths around
    the filter: io_uring while a path protection (or the /proc/PID/mem check) is on; without Landlock's
    signal scope, the kill family, file owners (F_SETOWN...: signals sent on
    I/O) and every ptrace-class access go to the supervisor, which refuses
    those aimed at itself (sandbox/shield.py)."""
    if path_protected(hooks):
        for name in IO_URING:
            yield sc.ERRNO(errno.EPERM), name, []
    if not kernel_shield:
        for name in KILL_FAMILY:
            yield sc.NOTIFY, name, []
        for name in ("fcntl", "fcntl64"):          # an owner gets signals on I/O
            for cmd in (F_SETOWN, F_SETOWN_EX):
                yield sc.NOTIFY, name, [_int_eq(1, cmd)]
        for cmd in (FIOSETOWN, SIOCSPGRP):
            yield sc.NOTIFY, "ioctl", [_int_eq(1, cmd)]
        if "ptrace_access_check" not in hooks:
            for name, args in ROUTES["ptrace_access_check"]:
                yield sc.NOTIFY, name, args
