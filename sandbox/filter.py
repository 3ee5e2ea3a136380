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


def _not_self(arg: int) -> sc.Arg:
    """A pid argument other than 0 (the caller itself). Compared on all 64
    bits: a value the kernel truncates to 0 is routed too, and found to be
    the caller's own by the supervisor."""
    return sc.Arg(arg, sc.NE, 0)


F_SETOWN, F_SETOWN_EX = 8, 15
FIOSETOWN, SIOCSPGRP = 0x8901, 0x8902
KILL_FAMILY = ("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
               "pidfd_send_signal")
# A signal's route: the kill family, and file owners (F_SETOWN...: the kernel
# signals them on I/O).
_SIGNALS = [*((name, []) for name in KILL_FAMILY),
            *((name, [_int_eq(1, cmd)]) for name in ("fcntl", "fcntl64")
              for cmd in (F_SETOWN, F_SETOWN_EX)),
            *(("ioctl", [_int_eq(1, cmd)]) for cmd in (FIOSETOWN, SIOCSPGRP))]

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

# Calls that act on another process that Landlock's scopes do not cover: the
# guard refuses those aimed at yama-run's own processes, in every mode.
GUARDED = ("task_prlimit", "task_setnice", "task_setioprio", "task_setscheduler",
           "task_movememory", "perf_event_open")


def path_protected(hooks: set[str]) -> bool:
    """A path protection, or the judging of opens of /proc/PID/mem: io_uring's
    OPENAT would reach a sibling's memory unseen."""
    return any(hook.startswith(PATH_HOOK_PREFIXES) for hook in hooks) \
        or "ptrace_proc_open" in hooks


def hostile_rules(hooks: set[str], kernel_shield: bool):
    """(action, syscall, argument comparisons) that close the paths around
    the filter: io_uring while a path protection (or the /proc/PID/mem check)
    is on; the calls that act on another process by pid, which Landlock does
    not cover, always (GUARDED); and without Landlock's domain, the signals
    (kill family, file owners) and every ptrace-class access, whatever the
    chain hooks. The supervisor refuses those aimed at yama-run's own
    processes (sandbox/guard.py)."""
    guarded = [*GUARDED, *(() if kernel_shield else ("task_kill", "ptrace_access_check",
                                                      "ptrace_proc_open"))]
    # Without Landlock's domain every open is routed for the guard (root
    # inside holds CAP_SYS_PTRACE over the supervisor: /proc/SUP/mem), so an
    # io_uring OPENAT would reach yama-run unseen: closed then too.
    if path_protected(hooks) or "ptrace_proc_open" in guarded:
        for name in IO_URING:
            yield sc.ERRNO(errno.EPERM), name, []
    for hook in guarded:
        if hook not in hooks:
            for name, args in ROUTES[hook]:
                yield sc.NOTIFY, name, args
