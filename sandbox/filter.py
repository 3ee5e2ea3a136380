"""The seccomp filter: only the syscalls (and sub-operations) that some module
in the chain hooks are routed to the supervisor, for every x86 ABI."""
from __future__ import annotations

import errno
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
}


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
    ],
    "ptrace_traceme": [("ptrace", [sc.Arg(0, sc.EQ, PTRACE_TRACEME)])],
    "task_prctl": [("prctl", [_int_eq(0, PR_SET_PTRACER)])],
    "path_link": [("link", []), ("linkat", [])],
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


def build(hooks: set[str], action: int = sc.NOTIFY) -> bytes | None:
    """The BPF program for these hooks, or None when nothing is hooked.
    action: sc.NOTIFY (user-notify) or TRACED (the ptrace backend)."""
    rules = [rule for hook in sorted(hooks) for rule in ROUTES.get(hook, ())]
    if not rules:
        return None
    f = sc.SyscallFilter(sc.ALLOW)
    for arch, _ in ARCHES[1:]:
        f.add_arch(arch)
    f.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)
    for name, args in rules:
        f.add_rule(action, name, *args)
    for guard, name, args in TRACE_GUARDS if action == TRACED else ():
        f.add_rule(guard, name, *args)
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
