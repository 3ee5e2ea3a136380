"""Against a hostile program: every attack here is made by the sandboxed
program itself (tests/helpers/hostile_probe.c), and each test asserts what it
gets: the errno, the supervisor still answering, the program killed.

README.md, "Against a hostile program", says the same in prose."""
from __future__ import annotations

import os
import select
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass

import pyseccomp as sc
import pytest

from conftest import YAMA_RUN, requires_root, tree_env, yama_run
from pinned_profile import PROFILE, YR, yr
from sandbox.shield import KERNEL_BOTH, KERNEL_PTRACE


pytestmark = requires_root

UID = 1001
AS_USER = ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups"]
NO_LANDLOCK = {**os.environ, "YAMA_RUN_NO_LANDLOCK": "1"}
# the domain of a kernel before 6.12: ptrace-class accesses, without the signal scope
ABI_5 = {**os.environ, "YAMA_RUN_LANDLOCK_ABI": "5"}
MODES = {"landlock": None, "hooks": NO_LANDLOCK, "ptrace-domain": ABI_5}
TIMEOUT = 30


def results(stdout: str) -> dict[str, str]:
    out = {}
    for line in stdout.splitlines():
        name, _, value = line.partition(" ")
        out[name] = value
    return out


@pytest.fixture(scope="session")
def probe(helper, tmp_path_factory):
    """The probe in a directory every uid can reach."""
    built = helper("hostile_probe")
    where = tmp_path_factory.mktemp("hostile")
    where.chmod(0o755)
    exe = where / "hostile_probe"
    exe.write_bytes(open(built, "rb").read())
    exe.chmod(0o755)
    return str(exe)


@pytest.fixture(scope="session")
def ptrace_only(tmp_path_factory):
    path = tmp_path_factory.mktemp("profiles") / "ptrace-only.toml"
    path.write_text('chain = ["ptrace"]\n\n[ptrace]\nscope = 1\n')
    return str(path)


def landlock_signal_scope() -> bool:
    from sandbox._yama import lib
    return lib.yr_landlock_abi() >= 6


def kernel_refuses_ptrace(mode: str) -> bool:
    """Does the program of this mode run in a Landlock domain?"""
    from sandbox._yama import lib
    return mode != "hooks" and lib.yr_landlock_abi() >= (6 if mode == "landlock" else 2)


# -- the supervisor out of reach ---------------------------------------------------

def shield(probe, *options, prefix=(), mode_arg=None, env=None):
    """The shield probe under yama-run, in a process group of its own: its
    kill(0) reaches the whole group but yama-run, as natively (here the test
    runner would be in it)."""
    return yr(*options, "--", *prefix, probe, "shield", *([mode_arg] if mode_arg else []),
              env=env, timeout=TIMEOUT, process_group=0)


DIRECT = ["KILL", "TKILL", "TGKILL", "SIGQUEUEINFO", "TGSIGQUEUEINFO", "PIDFD_SEND_SIGNAL",
          "PROCDIR_SEND_SIGNAL", "ATTACH", "SEIZE", "VMREAD", "VMWRITE", "GETFD"]


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("scope", [0, 1, 3])
def test_root_inside_cannot_signal_or_trace_the_supervisor(probe, mode, scope):
    """Root in the sandbox aims SIGKILL (kill, tkill and tgkill at every
    supervisor thread, rt_sigqueueinfo, rt_tgsigqueueinfo, pidfd_send_signal
    with a pidfd and with a /proc/PID directory fd), ptrace attach and seize,
    process_vm_readv/writev and pidfd_getfd at the supervisor, at every scope
    (scope 0 routes no ptrace hook of its own)."""
    if mode == "landlock" and not landlock_signal_scope():
        pytest.skip("kernel lacks Landlock ABI 6 (signal scope)")
    r = shield(probe, "--set", f"ptrace.scope={scope}", env=MODES[mode])
    got = results(r.stdout)
    assert r.returncode == 0, r
    assert {k: got.get(k) for k in DIRECT} == {k: "EPERM" for k in DIRECT}, r.stdout
    assert got["ALIVE"] == "0" and got["SUPERVISOR"] == "same", r.stdout
    # what is not aimed at the supervisor still works (the fallback emulates pidfds)
    own = ["OWN_KILL", "OWN_TGKILL", "OWN_PIDFD_SIGNAL", "OWN_PIDFD_SIGINFO"]
    assert [got[k] for k in own] == ["0"] * 4, r.stdout
    # a group signal (SIGUSR2, fatal to the supervisor) reaches the program's
    # own group but not the supervisor, which shares it: by Landlock, or sent
    # by the fallback to every member but itself
    assert got["KILL_OWN_GROUP"] == got["KILL_PGRP"] == "0", r.stdout
    assert got["GOT_GROUP_SIGNAL"] == "1", r.stdout
    if kernel_refuses_ptrace(mode):
        # kernel-enforced: /proc/PID/mem and /proc/PID/fd (the listener) too
        assert got["PROCMEM"] == "EACCES" and got["PROCFD"] == "EACCES", r.stdout


@pytest.mark.parametrize("mode", list(MODES))
def test_user_inside_cannot_open_supervisor_proc_files(probe, mode):
    """uid 1001: /proc/SUPERVISOR/mem and /proc/SUPERVISOR/fd/N are closed
    with or without Landlock (a non-dumpable, root supervisor)."""
    if mode == "landlock" and not landlock_signal_scope():
        pytest.skip("kernel lacks Landlock ABI 6 (signal scope)")
    r = shield(probe, prefix=AS_USER, env=MODES[mode])
    got = results(r.stdout)
    assert r.returncode == 0, r
    assert got["PROCMEM"] == "EACCES" and got["PROCFD"] == "EACCES", r.stdout
    assert {k: got.get(k) for k in DIRECT} == {k: "EPERM" for k in DIRECT}, r.stdout


@pytest.mark.parametrize("mode", list(MODES))
def test_file_owner_signals_cannot_reach_the_supervisor(probe, mode):
    """F_SETOWN to the supervisor with F_SETSIG SIGKILL, then I/O: the kernel
    sends that signal itself. The hooks refuse to make the supervisor an
    owner (F_SETOWN, F_SETOWN_EX, FIOSETOWN), with Landlock's signal scope as
    the backstop, and still perform the same calls naming the program itself."""
    if mode == "landlock" and not landlock_signal_scope():
        pytest.skip("kernel lacks Landlock ABI 6 (signal scope)")
    r = shield(probe, mode_arg="sigio", env=MODES[mode])
    got = results(r.stdout)
    assert r.returncode == 0, r
    # routed in both modes (contained: Landlock's scope is the backstop)
    assert [got[k] for k in ("SIGIO_SETUP", "SETOWN_EX", "FIOSETOWN")] == ["EPERM"] * 3, r.stdout
    assert got["ALIVE"] == "0" and got["SUPERVISOR"] == "same", r.stdout
    assert [got[k] for k in ("OWN_SETOWN_EX", "OWN_OWNER_EX", "OWN_FIOSETOWN",
                             "OWN_OWNER_SOCK", "SETOWN_EX_BADPTR")] == \
        ["0", "1", "0", "1", "EFAULT"], r.stdout


@pytest.mark.parametrize("scope", [0, 1, 2])
def test_emulated_pidfd_getfd_respects_the_landlock_domain(helper, scope):
    """pidfd_getfd is emulated by the supervisor, which is outside the
    Landlock domain: it must refuse a process outside the sandbox as the
    kernel refuses the caller (root passes scopes 1 and 2 by CAP_SYS_PTRACE;
    an allowed call would say EBADF: the sleep has no fd 100)."""
    if not landlock_signal_scope():
        pytest.skip("kernel lacks Landlock ABI 6 (signal scope)")
    ptrace_probe = helper("ptrace_probe", "-no-pie")
    outside = subprocess.Popen(["sleep", "30"])
    try:
        r = yr("--set", f"ptrace.scope={scope}", "--", ptrace_probe, "run",
                     f"pid={outside.pid}", "getfd", timeout=TIMEOUT)
        assert "GETFD EPERM" in r.stdout.splitlines(), r
        r = yr("--set", f"ptrace.scope={scope}", "--set", "contain.enabled=false", "--",
               ptrace_probe, "run", f"pid={outside.pid}", "getfd", timeout=TIMEOUT)
        assert "GETFD EBADF" in r.stdout.splitlines(), r        # Yama's rules alone
    finally:
        outside.kill()
        outside.wait()


def test_emulated_link_cannot_follow_an_outsiders_proc_fd(tmp_path):
    if not landlock_signal_scope():
        pytest.skip("kernel lacks Landlock ABI 6 (signal scope)")
    tmp_path.chmod(0o777)
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    secret = private / "held-open"
    secret.write_text("only the outsider holds this\n")
    outside = subprocess.Popen(["sleep", "30"], stdin=open(secret))     # fd 0 of a root process
    try:
        r = yr("--", "sh", "-c", f"cat /proc/{outside.pid}/fd/0; echo CAT $?; "
                     f"ln -L /proc/{outside.pid}/fd/0 {tmp_path}/stolen; echo LN $?")
        assert "CAT 1" in r.stdout, r         # the kernel refuses the caller
        assert "LN 1" in r.stdout, r          # so must the emulated link
        assert not (tmp_path / "stolen").exists()
    finally:
        outside.kill()
        outside.wait()


def test_verbose_says_which_protection_is_in_force():
    r = yr("-v", "--", "true")
    if landlock_signal_scope():
        assert "yama-run: contained: nothing inside reaches a process outside" in r.stderr
        assert "landlock (ABI " in r.stderr and "signal scope, ptrace domain) the kernel's " \
            "backstop; supervisor shielded, non-dumpable" in r.stderr, r.stderr
    r = yr("-v", "--", "true", env=NO_LANDLOCK)
    assert ("yama-run: contained by seccomp hooks alone (landlock not used: "
            "YAMA_RUN_NO_LANDLOCK=1: kill family, file owners, ptrace access and calls on a "
            "process by pid routed); supervisor shielded, non-dumpable; without a user "
            "namespace of its own, a call checked then continued") in r.stderr, r.stderr
    if kernel_refuses_ptrace("ptrace-domain"):
        r = yr("-v", "--", "true", env=ABI_5)
        assert ("yama-run: contained: nothing inside reaches a process outside; calls routed "
                "and refused by contain, landlock (ABI 5: ptrace domain; no signal scope: the "
                "kill family routed) the kernel's backstop; mounts refused inside") in r.stderr, \
            r.stderr
    r = yr("-v", "--set", "contain.enabled=false", "--", "true")
    assert ("yama-run: not contained: processes outside the sandbox are reached as the "
            "kernel allows; supervisor shielded by seccomp hooks") in r.stderr, r.stderr


def test_fallback_audit_names_the_refused_signal(probe):
    r = shield(probe, "-v", env=NO_LANDLOCK)
    assert "refused kill (signal 9) of" in r.stderr, r.stderr
    assert "it would reach the supervisor" in r.stderr, r.stderr


@pytest.mark.skipif(not os.path.exists("/proc/self/ns/pid"), reason="needs pid namespaces")
def test_landlock_program_cannot_signal_outside_the_sandbox(probe):
    """The documented consequence of Landlock's scope: a process outside the
    sandbox (here a sleep of the same uid, started by the test) cannot be
    signalled from inside; inside, signals work."""
    if not landlock_signal_scope():
        pytest.skip("kernel lacks Landlock ABI 6 (signal scope)")
    outside = subprocess.Popen(["sleep", "30"])
    try:
        r = yr("--", "sh", "-c",
                     f"kill -TERM {outside.pid}; echo OUT $?; sleep 30 & kill $!; echo IN $?")
        assert "OUT 1" in r.stdout and "IN 0" in r.stdout, r
        assert outside.poll() is None
    finally:
        outside.kill()
        outside.wait()


# -- every hooked family, every ABI --------------------------------------------------

PTRACE_ATTACH, PTRACE_SEIZE, PTRACE_TRACEME = 16, 0x4206, 0
PR_SET_PTRACER = 0x59616D61
NOTIFY = 0x7FC00000
ERRNO_EPERM = 0x00050000 | 1
AUDIT = {"x64": 0xC000003E, "i386": 0x40000003, "x32": 0xC000003E}
ARCH = {"x64": sc.Arch.X86_64, "i386": sc.Arch.X86, "x32": sc.Arch.X32}
ABIS = list(AUDIT)


@dataclass(frozen=True)
class Family:
    op: str                 # hostile_probe abi ABI OP
    syscall: str | tuple    # as libseccomp names it (a tuple: the first the ABI has)
    arg0: int | None        # the first argument the filter compares, if any
    sandboxed: str          # what the program gets under yama-run
    native: str             # what it gets without (the control)
    action: int = NOTIFY    # what the filter does with it
    argv: tuple = ()        # OP's arguments ("{new}": a fresh name), in the scenario dir
    as_user: bool = False   # run as uid 1001
    abis: tuple = ("x64", "i386", "x32")


ALLOW = 0x7FFF0000
LINK_SECRET = dict(argv=("secret", "{new}"), as_user=True)   # root's 0600 file, by uid 1001
OWN_FILE = dict(argv=("own",), as_user=True)                 # a file of its own

# One line per family. The path families are routed by the default profile
# here (symlinks enforced by yama-run while the kernel's sysctl is 0); a
# program's own file opens and stats the same both ways.
FAMILIES = {
    "ptrace_attach": Family("attach", "ptrace", PTRACE_ATTACH, "EPERM", "0"),
    "ptrace_seize": Family("seize", "ptrace", PTRACE_SEIZE, "EPERM", "0"),
    "ptrace_traceme": Family("traceme", "ptrace", PTRACE_TRACEME, "EPERM", "0"),
    "pr_set_ptracer": Family("ptracer", "prctl", PR_SET_PTRACER, "0", "EINVAL"),
    "pr_set_ptracer_high_bits": Family("ptracer_hi", "prctl", PR_SET_PTRACER | 1 << 32,
                                       "0", "EINVAL", abis=("x64", "x32")),
    "process_vm_readv": Family("vmread", "process_vm_readv", None, "EPERM", "0"),
    "process_vm_writev": Family("vmwrite", "process_vm_writev", None, "EPERM", "0"),
    "pidfd_getfd": Family("getfd", "pidfd_getfd", None, "EPERM", "0"),
    "link": Family("link", "link", None, "EPERM", "0", **LINK_SECRET),
    "linkat": Family("linkat", "linkat", None, "EPERM", "0", **LINK_SECRET),
    "io_uring_setup": Family("uring_setup", "io_uring_setup", None, "EPERM", "0",
                             action=ERRNO_EPERM),
    "io_uring_enter": Family("uring_enter", "io_uring_enter", None, "EPERM", "EBADF",
                             action=ERRNO_EPERM),
    "io_uring_register": Family("uring_register", "io_uring_register", None, "EPERM",
                                "EINVAL", action=ERRNO_EPERM),
    "open": Family("open", "open", None, "0", "0", **OWN_FILE),
    "openat": Family("openat", "openat", None, "0", "0", **OWN_FILE),
    "openat2": Family("openat2", "openat2", None, "0", "0", **OWN_FILE),
    "creat": Family("creat", "creat", None, "0", "0", **OWN_FILE),
    "stat": Family("stat", "stat", None, "0", "0", **OWN_FILE),
    "lstat": Family("lstat", "lstat", None, "0", "0", **OWN_FILE),
    "stat64": Family("stat64", "stat64", None, "0", "0", abis=("i386",),
                     **OWN_FILE),
    "lstat64": Family("lstat64", "lstat64", None, "0", "0", abis=("i386",),
                      **OWN_FILE),
    "fstatat": Family("fstatat", ("newfstatat", "fstatat64"), None, "0", "0",
                      **OWN_FILE),
    "statx": Family("statx", "statx", None, "0", "0", **OWN_FILE),
    "access": Family("access", "access", None, "0", "0", **OWN_FILE),
    "faccessat": Family("faccessat", "faccessat", None, "0", "0", **OWN_FILE),
    "faccessat2": Family("faccessat2", "faccessat2", None, "0", "0", **OWN_FILE),
}
CASES = [(name, abi) for name, f in FAMILIES.items() for abi in f.abis]


def resolve(family: Family, abi: str) -> int:
    names = family.syscall if isinstance(family.syscall, tuple) else (family.syscall,)
    nrs = [sc.resolve_syscall(ARCH[abi], name) for name in names]
    return next(nr for nr in nrs if nr >= 0)


def kernel_has_x32() -> bool:
    from sandbox._yama import lib
    return bool(lib.yr_x32_enabled())


def run_bpf(prog: bytes, nr: int, arch: int, args=(0,) * 6) -> int:
    """A classic-BPF interpreter for seccomp programs, enough for libseccomp's
    output: what the filter itself answers, whatever the kernel behind it."""
    data = struct.pack("<iIQ6Q", nr, arch, 0, *[a & (2**64 - 1) for a in args])
    insns = [struct.unpack("<HBBI", prog[i:i + 8]) for i in range(0, len(prog), 8)]
    a = x = pc = 0
    mem = [0] * 16
    while True:
        code, jt, jf, k = insns[pc]
        cls = code & 0x07
        pc += 1
        if cls == 0x00:                                    # LD
            mode = code & 0xE0
            a = (struct.unpack_from("<I", data, k)[0] if mode == 0x20 else
                 k if mode == 0x00 else mem[k] if mode == 0x60 else len(data))
        elif cls == 0x01:                                  # LDX
            x = k if code & 0xE0 == 0x00 else mem[k] if code & 0xE0 == 0x60 else len(data)
        elif cls == 0x02:
            mem[k] = a
        elif cls == 0x03:
            mem[k] = x
        elif cls == 0x04:                                  # ALU
            src = x if code & 0x08 else k
            op = code & 0xF0
            a = {0x00: a + src, 0x10: a - src, 0x20: a * src, 0x40: a | src,
                 0x50: a & src, 0x60: a << src, 0x70: a >> src, 0x80: -a,
                 0xA0: a ^ src}[op] & 0xFFFFFFFF
        elif cls == 0x05:                                  # JMP
            op = code & 0xF0
            if op == 0x00:
                pc += k
                continue
            src = x if code & 0x08 else k
            taken = {0x10: a == src, 0x20: a > src, 0x30: a >= src, 0x40: bool(a & src)}[op]
            pc += jt if taken else jf
        elif cls == 0x06:                                  # RET
            return a if code & 0x18 == 0x10 else k
        else:                                              # MISC
            a, x = (a, a) if code & 0xF8 == 0x00 else (x, x)


@pytest.fixture(scope="session")
def default_bpf():
    """The filter of the default profile (ptrace scope 1, hardlinks), as built."""
    from sandbox import filter as seccomp_filter
    hooks = {"ptrace_access_check", "ptrace_traceme", "task_prctl", "path_link",
             "follow_link", "create_in_sticky"}
    # what the kernel refuses itself: everything (the signal scope), ptrace-class
    # accesses only (a domain of ABI 2-5), nothing (no domain)
    return {shield: seccomp_filter.build(hooks, shield) for shield in (KERNEL_BOTH, KERNEL_PTRACE, 0)}


@pytest.mark.parametrize("family, abi", CASES)
def test_filter_routes_every_family_on_every_abi(default_bpf, family, abi):
    """The BPF itself (run here, not in the kernel) routes each family for each
    ABI: x32 included, so nothing rests on the kernel refusing x32."""
    f = FAMILIES[family]
    args = (f.arg0 or 0, 0, 0, 0, 0, 0)
    for shield, prog in default_bpf.items():
        assert run_bpf(prog, resolve(f, abi), AUDIT[abi], args) == f.action, (family, abi, shield)


def test_filter_lets_unhooked_calls_through_and_kills_other_arches(default_bpf):
    prog = default_bpf[KERNEL_BOTH]
    getpid = sc.resolve_syscall(sc.Arch.X86_64, "getpid")
    assert run_bpf(prog, getpid, AUDIT["x64"]) == 0x7FFF0000             # ALLOW
    assert run_bpf(prog, 1, 0xC00000B7) == 0x80000000                      # aarch64: KILL_PROCESS
    # ptrace PEEKDATA is not routed: a debugger inside runs at native speed
    ptrace = sc.resolve_syscall(sc.Arch.X86_64, "ptrace")
    assert run_bpf(prog, ptrace, AUDIT["x64"], (2, 0, 0, 0, 0, 0)) == 0x7FFF0000


def test_fallback_filter_routes_the_kill_family_and_file_owners(default_bpf):
    for name in ("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
                 "pidfd_send_signal"):
        for abi in ABIS:
            nr = sc.resolve_syscall(ARCH[abi], name)
            # routed wherever Landlock's domain has no signal scope
            assert run_bpf(default_bpf[0], nr, AUDIT[abi]) == NOTIFY, (name, abi)
            assert run_bpf(default_bpf[KERNEL_PTRACE], nr, AUDIT[abi]) == NOTIFY, (name, abi)
            assert run_bpf(default_bpf[KERNEL_BOTH], nr, AUDIT[abi]) == 0x7FFF0000, (name, abi)
    # file owners (signals on I/O): only the owner-setting commands
    for abi in ABIS:
        fcntl = sc.resolve_syscall(ARCH[abi], "fcntl64" if abi == "i386" else "fcntl")
        ioctl = sc.resolve_syscall(ARCH[abi], "ioctl")
        for nr, cmd, want in ((fcntl, 8, NOTIFY), (fcntl, 15, NOTIFY), (fcntl, 3, 0x7FFF0000),
                              (ioctl, 0x8901, NOTIFY), (ioctl, 0x8902, NOTIFY),
                              (ioctl, 0x5401, 0x7FFF0000)):
            assert run_bpf(default_bpf[0], nr, AUDIT[abi], (0, cmd, 0, 0, 0, 0)) == want


@pytest.fixture
def scenario(tmp_path_factory, sysctl):
    """A directory uid 1001 may write, holding root's 0600 "secret" and uid
    1001's "own"; the kernel's own hardlink protection off, so every EPERM on
    "secret" below is yama-run's."""
    sysctl("fs.protected_hardlinks", 0)
    d = tmp_path_factory.mktemp("scenario")
    d.chmod(0o777)
    (d / "secret").write_text("root only\n")
    (d / "secret").chmod(0o600)
    (d / "own").write_text("mine\n")
    os.chown(d / "own", UID, UID)
    return d


def run_family(probe, family: Family, abi: str, cwd, sandboxed: bool) -> str:
    new = f"new-{family.op}-{abi}-{int(sandboxed)}"
    cmd = [probe, "abi", abi, family.op, *(a.format(new=new) for a in family.argv)]
    if family.as_user:
        cmd = [*AS_USER, *cmd]
    if sandboxed:
        r = yr("--set", "ptrace.scope=3", "--", *cmd, cwd=cwd, timeout=TIMEOUT)
    else:
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=TIMEOUT)
    got = results(r.stdout).get(f"{family.op}:{abi}")
    assert got is not None, r
    return got


@pytest.mark.parametrize("family, abi", CASES)
def test_every_family_on_every_abi(probe, scenario, family, abi):
    """Each family through x86-64, i386 (int $0x80, MAP_32BIT memory) and x32,
    under yama-run (ptrace scope 3, hardlinks protected) and natively. Where
    the kernel refuses x32, the call never succeeds: ENOSYS, or the filter's
    own EPERM for io_uring."""
    f = FAMILIES[family]
    inside = run_family(probe, f, abi, scenario, sandboxed=True)
    outside = run_family(probe, f, abi, scenario, sandboxed=False)
    if abi == "x32" and not kernel_has_x32():
        assert outside == "ENOSYS"
        assert inside == ("EPERM" if f.action == ERRNO_EPERM else "ENOSYS")
        return
    assert (inside, outside) == (f.sandboxed, f.native)


# -- the terminal's owner, named by O_ASYNC --------------------------------------------

@pytest.fixture(scope="session")
def async_probe(helper, tmp_path_factory):
    where = tmp_path_factory.mktemp("async")
    where.chmod(0o755)
    exe = where / "async_probe"
    exe.write_bytes(open(helper("async_probe"), "rb").read())
    exe.chmod(0o755)
    return str(exe)


def in_a_terminal(command: str, env=None) -> str:
    """command run by sh in a new terminal (script), where it is the
    foreground process group; what the terminal showed."""
    if shutil.which("script") is None:
        pytest.skip("needs script (util-linux) for a terminal")
    out = subprocess.run(["script", "-qfec", command, "/dev/null"], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=TIMEOUT, env=tree_env(env))
    return out.stdout.replace(".", "").replace("\r", "")


@pytest.mark.parametrize("call", ["fcntl", "ioctl"])
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("contained", [False, True], ids=["default", "contained"])
def test_the_terminal_never_makes_yama_run_its_owner(async_probe, tmp_path, mode, contained,
                                                     call):
    """O_ASYNC on the terminal makes its foreground group the owner of the
    file, without F_SETOWN; F_SETSIG picks the signal and a stopped-then-
    started output sends it (found by an attacker pass: SIGSTOP froze the
    front and the supervisor, SIGUSR1 ended them). Natively the shell that
    shares the group is ended (the control). Under yama-run it is refused
    (EPERM: the session holds yama-run's front and supervisor), in every
    mode (contained in Landlock's domain with the signal scope the kernel
    would drop the signal too; the route is the contain module's there).
    yama-run ends normally."""
    results = tmp_path / "results"
    native = in_a_terminal(f"sh -c '{async_probe} {call} 10 > {results}; echo shell-survived'")
    assert "shell-survived" not in native, native
    assert results.read_text() == "async: ok\ncaught: 1\n"
    chain = "--profile " + PROFILE if contained else "--no-profile"
    command = " ".join([*YAMA_RUN, "-v", chain, "--", async_probe, call, "10"])
    got = in_a_terminal(f"{command} > {results}; echo yama-run-exit=$?", env=MODES[mode])
    assert "yama-run-exit=0" in got, got
    assert "refused O_ASYNC on a terminal whose session holds yama-run" in got, got
    assert results.read_text() == "async: EPERM\ncaught: 0\n"


@pytest.mark.parametrize("mode", list(MODES))
def test_a_terminal_of_the_sandboxs_own_takes_o_async(async_probe, tmp_path, mode):
    """A terminal whose session is the sandbox's own (script inside): its
    foreground group can only ever hold the sandbox's processes, so O_ASYNC
    goes on as natively and the probe gets its own signal."""
    if shutil.which("script") is None:
        pytest.skip("needs script (util-linux) for a terminal")
    results = tmp_path / "results"
    r = yr("--", "script", "-qfec", f"exec {async_probe} fcntl 10 > {results}", "/dev/null",
           env=MODES[mode], timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r
    assert results.read_text() == "async: ok\ncaught: 1\n"


@pytest.mark.parametrize("mode", list(MODES))
def test_o_async_on_a_device_that_is_no_terminal_goes_on_as_natively(helper, mode):
    """O_ASYNC on /dev/null, /dev/zero, /dev/urandom (whose fasync names no
    owner) and /dev/net/tun (whose names whoever turns it on): F_SETFL 0,
    FIOASYNC 0 or the kernel's ENOTTY, and tun's owner the program itself,
    as natively. Each was refused EPERM, for a device that "would make us
    its owner", since the process that turns O_ASYNC on is the caller and
    hands the owner to the calling thread (a review)."""
    devices = [d for d in ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/net/tun")
               if os.path.exists(d)]
    argv = [helper("async_devices"), *devices]
    native = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT)
    assert "/dev/null: F_SETFL=ok FIOASYNC=ENOTTY owner=none" in native.stdout, native
    r = yr("--", *argv, env=MODES[mode], timeout=TIMEOUT)
    assert r.returncode == 0 and r.stdout == native.stdout, (native.stdout, r)


SESSION_WALK_OUT_OF_DESCRIPTORS = r"""
import errno, os, resource, sys
from sandbox._yama import ffi, lib
from sandbox.guard import Guard
with open("/proc/self/stat", "rb") as f:
    own_tty = int(f.read().rsplit(b")", 1)[1].split()[4])
pids = ffi.new("int32_t[]", 65536)
print("readable", lib.yr_session_members(own_tty, pids, 65536))
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
held = []
while True:
    try:
        held.append(os.open("/dev/null", os.O_RDONLY))
    except OSError:
        break
os.close(held.pop())                    # one left: the walk's /proc, none for a stat
print("full", lib.yr_session_members(own_tty, pids, 65536), -errno.EMFILE)
for name, kind in (("group", {"pgrp": os.getpgrp()}), ("user", {"uid": os.getuid()})):
    try:
        print(name, len(Guard._members(None, None, **kind)))
    except OSError as e:
        print(name, errno.errorcode[e.errno])
"""


def test_the_walks_of_a_set_of_processes_fail_closed_when_proc_cannot_be_read():
    """O_ASYNC on a terminal goes on only when no process of its session is
    one the caller may not signal; setpriority and ioprio_set of a group or
    a user, a file owner that is a group, pidfd_send_signal to a group, only
    when none of the set is yama-run's (or, contained, outside). Each set is
    found by a walk of /proc, and a process whose stat or status could not
    be read (out of descriptors) was skipped: a member taken for none, so
    the set was judged on a shorter list. The walks fail instead (-EMFILE,
    OSError: the call is refused, said); a process that is gone is the only
    one passed over. Out of descriptors, the supervisor's own walks, in a
    process of their own."""
    r = subprocess.run([sys.executable, "-c", SESSION_WALK_OUT_OF_DESCRIPTORS],
                       capture_output=True, text=True, timeout=TIMEOUT)
    lines = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert int(lines["readable"]) >= 1, r.stdout + r.stderr     # itself, at least
    got, emfile = lines["full"].split()
    assert got == emfile, r.stdout + r.stderr
    assert lines["group"] == lines["user"] == "EMFILE", r.stdout + r.stderr


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("abi", ABIS)
def test_kill_supervisor_through_every_abi(probe, mode, abi):
    """kill(supervisor, SIGKILL) through x86-64, int $0x80 and x32."""
    if mode == "landlock" and not landlock_signal_scope():
        pytest.skip("kernel lacks Landlock ABI 6 (signal scope)")
    r = yr("--", probe, "abi", abi, "kill", env=MODES[mode], timeout=TIMEOUT)
    want = "ENOSYS" if abi == "x32" and not kernel_has_x32() else "EPERM"
    assert r.returncode == 0 and results(r.stdout) == {f"kill:{abi}": want}, r


# -- io_uring ----------------------------------------------------------------------

def test_io_uring_closed_by_the_proc_mem_check(probe, ptrace_only):
    """A ptrace-only chain at scope 1 judges opens of /proc/PID/mem, which an
    io_uring OPENAT would make unseen: io_uring is closed there too."""
    r = yama_run("--profile", ptrace_only, "--", probe, "abi", "x64", "uring_setup")
    assert results(r.stdout) == {"uring_setup:x64": "EPERM"}, r


ALL_PATHS_OFF = ["--set", "ptrace.scope=0", "--set", "hardlinks.protected=0",
                 "--set", "symlinks.protected=0", "--set", "fifos.protected=0",
                 "--set", "regular.protected=0"]


def test_io_uring_closed_when_contained_and_nothing_else_routes_paths(probe):
    """Contained (Landlock keeps yama-run out of reach), ptrace scope 0 and no
    path protection: the opens that may write are still routed for the
    gate's cgroup check (an io_uring OPENAT would write an outsider's
    cgroup.kill unseen), so io_uring is closed there too. It worked there
    until cgroup files were judged (docs/hostile.md)."""
    r = yama_run("--no-profile", "--set", "contain.enabled=true", *ALL_PATHS_OFF, "--",
                 probe, "abi", "x64", "uring_setup")
    assert results(r.stdout) == {"uring_setup:x64": "EPERM"}, r


def test_io_uring_closed_when_not_contained(probe):
    """Not contained, nothing else routed: every open is still judged for the
    guard of yama-run's own processes (root inside holds CAP_SYS_PTRACE over
    them), so io_uring, whose OPENAT would open /proc/SUPERVISOR/mem unseen,
    is EPERM."""
    r = yama_run("--no-profile", *ALL_PATHS_OFF, "--", probe, "abi", "x64", "uring_setup")
    assert results(r.stdout) == {"uring_setup:x64": "EPERM"}, r


def test_inherited_ring_is_unusable(probe):
    """A ring created outside and inherited: io_uring_enter and
    io_uring_register on it are EPERM (natively: 0 and EFAULT/EINVAL)."""
    inner = f'{shlex.join([*YR, "--", probe, "abi", "x64", "uring_enter"])} "$RING_FD"; ' \
            f'{shlex.join([*YR, "--", probe, "abi", "x64", "uring_register"])} "$RING_FD"'
    r = subprocess.run([probe, "uring-hold", "sh", "-c", inner], capture_output=True,
                       text=True, timeout=TIMEOUT)
    assert results(r.stdout) == {"uring_enter:x64": "EPERM", "uring_register:x64": "EPERM"}, r
    native = subprocess.run([probe, "uring-hold", "sh", "-c",
                             f'{probe} abi x64 uring_enter "$RING_FD"'],
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert results(native.stdout) == {"uring_enter:x64": "0"}, native


# -- fail closed ---------------------------------------------------------------------

def test_supervisor_killed_fails_closed(probe, tmp_path):
    """kill -9 of the supervisor: the main program dies (PDEATHSIG); an
    orphaned descendant lives on, and every hooked call it makes fails with
    ENOSYS (the link is not made), while unhooked calls work."""
    out = tmp_path / "after"
    proc = subprocess.Popen([*YR, "--", probe, "failclosed", str(out)],
                            stdout=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        line = proc.stdout.readline() if ready else ""
        assert line.startswith("READY "), line
        main_pid, descendant = map(int, line.split()[1:])
        os.kill(_supervisor_of(proc.pid), signal.SIGKILL)   # not the front: the supervisor
        proc.wait(timeout=10)
        deadline = time.monotonic() + 20
        while not (out.exists() and out.read_text().endswith("DONE\n")):
            assert time.monotonic() < deadline, "the descendant never reported"
            time.sleep(0.05)
        assert _gone(main_pid), "the main program outlived its supervisor"
        assert results(out.read_text()) == {"PRCTL": "ENOSYS", "ATTACH": "ENOSYS",
                                            "LINK": "ENOSYS", "LINKAT": "ENOSYS",
                                            "GETPID": "0", "DONE": ""}
        assert not (tmp_path / "after.link").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_call_waiting_when_the_supervisor_dies_fails_closed(probe, tmp_path):
    """A hooked call already waiting on the supervisor (stopped here, so it
    cannot answer) when the supervisor is killed gets ENOSYS."""
    out = tmp_path / "after"
    proc = subprocess.Popen([*YR, "--", probe, "failclosed", str(out), "pending"],
                            stdout=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        line = proc.stdout.readline() if ready else ""
        assert line.startswith("READY "), line
        descendant = int(line.split()[2])
        supervisor = _supervisor_of(proc.pid)
        os.kill(supervisor, signal.SIGSTOP)
        (tmp_path / "after.go").touch()
        deadline = time.monotonic() + 10        # until it waits in the hooked call
        while not _wchan(descendant).startswith("seccomp_do_user_notification"):
            assert time.monotonic() < deadline, _wchan(descendant)
            time.sleep(0.02)
        os.kill(supervisor, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 20
        while not (out.exists() and out.read_text().endswith("DONE\n")):
            assert time.monotonic() < deadline, "the descendant never reported"
            time.sleep(0.05)
        got = results(out.read_text())
        assert got["PENDING"] == "ENOSYS" and got["PRCTL"] == "ENOSYS", got
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


BROKEN_LOOP = ("import sys, sandbox.supervisor as s, sandbox.cli as cli\n"
               "def broken(self, ev):\n    raise SystemExit('injected failure')\n"
               "s.Supervisor._handle = broken\n"
               "sys.argv[0] = 'yama-run'\ncli.main()\n")


def test_broken_notification_loop_fails_closed(probe, tmp_path):
    """If the notification loop itself dies (here: an injected SystemExit,
    which the per-call handler does not catch), the program is killed and
    the listener dropped: a descendant's hooked call gets ENOSYS, never
    waits for ever."""
    out = tmp_path / "late"
    # A contained sandbox at scope 0 routes no opens that only read: with
    # every open routed (scope >= 1, for /proc/PID/mem; or not contained, for
    # the supervisor's /proc entries), no dynamically linked program could
    # start afterwards. The opens that may write are routed (the cgroup
    # check), so the late program's output goes to descriptors inherited
    # (bash: dash redirects only descriptors 0-9).
    scope0 = tmp_path / "scope0.toml"
    scope0.write_text('chain = ["contain", "ptrace"]\n\n[contain]\nenabled = true\n\n'
                      '[ptrace]\nscope = 0\n')
    start = time.monotonic()
    with open(out, "w") as late_out, open(f"{out}.err", "w") as late_err:
        fds = (late_out.fileno(), late_err.fileno())
        script = (f"(sleep 1; {probe} abi x64 ptracer >&{fds[0]} 2>&{fds[1]}) & "
                  f"{probe} abi x64 ptracer; sleep 5")
        r = subprocess.run([sys.executable, "-c", BROKEN_LOOP, "--wait", "--profile", str(scope0),
                            "--", "bash", "-c", script],
                           capture_output=True, text=True, timeout=30, pass_fds=fds)
    assert "the notification loop failed" in r.stderr, r.stderr
    assert r.returncode == -signal.SIGKILL, r
    # The late call fails closed: its prctl, or already its execve (routed
    # whenever a filter is installed, for the setuid notice: docs/everyday.md).
    late = out.read_text() + open(f"{out}.err").read()
    assert late == "ptracer:x64 ENOSYS\n" or "Function not implemented" in late, late
    assert time.monotonic() - start < 20


def _supervisor_of(front: int) -> int:
    """The supervisor: the child of the yama-run process we started (the
    front, which only waits: sandbox/lifetime.py)."""
    with open(f"/proc/{front}/task/{front}/children") as f:
        return int(f.read().split()[0])


def _wchan(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/wchan") as f:
            return f.read()
    except OSError:
        return ""


def _gone(pid: int, wait: float = 10) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in "ZX":
                    return True
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("scope", [0, 1])
def test_traceme_does_not_make_the_supervisor_a_debugger(probe, scope):
    """PTRACE_TRACEME makes the supervisor (the parent) the program's tracer:
    the stops it then reports once crashed the supervisor's reaper. Now the
    supervisor lets the tracee go with its signal, and the program goes on."""
    r = yr("--set", f"ptrace.scope={scope}", "--", probe, "traceme-raise",
                 timeout=TIMEOUT)
    assert (r.returncode, results(r.stdout)) == (3, {"TRACEME": "0", "HANDLED": "1"}), r
    assert "Traceback" not in r.stderr, r.stderr


def test_many_live_ptracer_declarations_do_not_exhaust_the_supervisor(probe):
    """300 live processes each holding a PR_SET_PTRACER declaration (two
    pidfds each in the supervisor) under a soft limit of 256 descriptors:
    the supervisor raises its own soft limit to the hard one after the spawn,
    and the program keeps the limit it was given."""
    r = subprocess.run(["prlimit", "--nofile=256:8192", *YR, "--", "sh", "-c",
                        f"ulimit -n; {probe} declare 300"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    assert r.stdout.splitlines()[0] == "256", r.stdout
    assert results(r.stdout) | {"256": ""} == {"256": "", "DECLARED": "300", "BAD": "0",
                                               "AFTER": "0"}, r
    assert "error" not in r.stderr, r.stderr


def test_lost_stderr_reader_does_not_stall_the_sandbox(probe, tmp_path):
    """With -v every denial is a line on stderr, which the program shares. Once
    its reader is gone (`yama-run -v … 2>&1 | head -2`), writing a line failed
    with EPIPE inside the notification thread, which died: every later hooked
    call waited for ever. Now the line is dropped and the call answered."""
    done = tmp_path / "done"
    script = (f"sleep 0.3; for i in 1 2 3; do {probe} abi x64 attach >/dev/null; done; "
              f"echo end > {done}")
    proc = subprocess.Popen([*YR, "-v", "--set", "ptrace.scope=3", "--", "sh", "-c",
                             script], stderr=subprocess.PIPE, text=True)
    try:
        proc.stderr.readline()
        proc.stderr.close()                 # the reader goes away
        assert proc.wait(timeout=20) == 0
        assert done.read_text() == "end\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- a program with its own filter; a second listener ---------------------------------

@pytest.mark.parametrize("mode", ["allow", "errno"])
def test_program_with_its_own_seccomp_filter(probe, mode):
    """Like a browser's sandbox: the program stacks its own filter; its own
    rule applies and every hooked call is still decided by yama-run."""
    r = yr("--set", "ptrace.scope=1", "--", probe, "ownfilter", mode, timeout=TIMEOUT)
    assert r.returncode == 0, r
    assert results(r.stdout) == {
        "OWN_FILTER": "0",
        "UNAME": "ENOTTY" if mode == "errno" else "0",
        "PTRACER": "0",                 # emulated: natively EINVAL here
        "ATTACH_CHILD": "0",            # a descendant, scope 1
        "ATTACH_PARENT": "EPERM",       # the supervisor
    }, r


def test_second_listener_is_ebusy_promptly(probe):
    start = time.monotonic()
    r = yr("--", probe, "listener", timeout=TIMEOUT)
    assert results(r.stdout) == {"NEW_LISTENER": "EBUSY"}, r
    assert time.monotonic() - start < 10


def test_nested_yama_run_exits_125_and_says_why():
    """With the notify backend asked for (auto falls back to ptrace instead,
    tests/test_backend_ptrace.py)."""
    start = time.monotonic()
    r = yr("--", *YR, "--backend", "notify", "--", "true", timeout=TIMEOUT)
    assert r.returncode == 125, r
    assert "cannot install the seccomp filter" in r.stderr, r.stderr
    assert "another user-notify supervisor" in r.stderr, r.stderr
    assert time.monotonic() - start < 15


def test_emulated_opens_do_not_reach_the_supervisors_proc_entries():
    """Opens are performed by the supervisor, outside the sandbox's Landlock
    domain: they must still refuse what the kernel refuses the caller. Root
    inside, with every path form (relative to a cwd in /proc/SUP, a listing of
    its fd/, through its root magic link), gets nothing; its own entries work."""
    script = ("cd /proc/$PPID && { head -c1 environ >/dev/null 2>&1 && echo env-open || echo env-refused; }; "
              "ls /proc/$PPID/fd >/dev/null 2>&1 && echo fd-open || echo fd-refused; "
              "cat /proc/$PPID/root/etc/hostname >/dev/null 2>&1 && echo root-open || echo root-refused; "
              "head -c1 /proc/self/environ >/dev/null && ls /proc/self/fd >/dev/null && echo own-ok")
    r = yama_run("--set", "symlinks.protected=1", "--", "sh", "-c", script)
    assert r.stdout.split() == ["env-refused", "fd-refused", "root-refused", "own-ok"], r
