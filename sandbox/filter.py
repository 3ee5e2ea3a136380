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

from .routes import (ERRNO, NOTIFY, ROUTES, TRACE_GUARDS, TRACED, Cmp, SYSCALL_IDS,
                     hostile_rules)
from .shield import KERNEL_BOTH
from .spawn import SetupError

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003

# (libseccomp arch, the arch the notification reports)
ARCHES = ((sc.Arch.X86_64, AUDIT_ARCH_X86_64),
          (sc.Arch.X86, AUDIT_ARCH_I386),
          (sc.Arch.X32, AUDIT_ARCH_X86_64))   # x32 numbers carry __X32_SYSCALL_BIT


def _arg(cmp: Cmp) -> sc.Arg:
    return sc.Arg(cmp.arg, cmp.op, cmp.a, cmp.b)


def build(hooks: set[str], kernel: int = KERNEL_BOTH, action: int = NOTIFY) -> bytes | None:
    """The BPF program for these hooks, or None when nothing is hooked.
    kernel: what Landlock's domain refuses by itself (sandbox/shield.py's
    KERNEL_*); the hooks keep the rest out of reach.
    action: NOTIFY (user-notify) or TRACED (the ptrace backend).

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
            f.add_rule(action, name, *map(_arg, args))
    for extra, name, args in hostile_rules(hooks, kernel):
        f.add_rule(action if extra == NOTIFY else extra, name, *map(_arg, args))
    for guard_action, name, args in TRACE_GUARDS if action == TRACED else ():
        f.add_rule(guard_action, name, *map(_arg, args))
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
              if action == NOTIFY}
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
    asm.ret(ERRNO(errno.ENOSYS))
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
