"""perf_event_open's attr, rewritten between the supervisor's read and the kernel's.

perf_event_open with attr.sigtrap on another task is an ATTACH-mode ptrace
access (a SIGTRAP sent to the target at each sample: it kills a program that
does not expect one), judged by yama-run's scope. The attr lies in the
caller's memory. The supervisor used to let the call go on unjudged whenever
its own read of the attr failed or found a size the kernel refuses ("the
kernel says so"), but the kernel then read the attr again: a second thread
flipping attr.size between 0x2000 and a valid size, or the attr's page
between unreadable and readable, had the kernel open the event on a process
the program may not ptrace, and that process died of SIGTRAP. Now the call
is never continued once the attr has been read: the kernel's EFAULT and
E2BIG are answered from the supervisor's one read, E2BIG by the kernel
itself on the supervisor's copy, its size written back as the kernel writes
it (sandbox/task_calls.py).

And the target: the supervisor makes the call for the caller (from a thread
of its own, since the attr must not be read again), and the kernel looks the
pid up at that moment. A target that died while the call was judged left its
number to whoever took it next, and the kernel lets a thread of the
supervisor open an event on any thread of its own: a number taken by a
worker of the supervisor would have given the program an event on
yama-run's own process. The target is now pinned (a pidfd) before it is
judged, and an event opened when it is gone is closed: ESRCH.

tests/helpers/perf_attr_probe.c makes the calls. The victim is a busy
uid-1001 process outside the sandbox, not the program's descendant: at
scope 1 refused; natively (no Yama in this kernel) the same uid opens the
event (test_ptrace_parity.py's control)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile

from pathlib import Path

import pytest

from as_user import AS_USER, as_user  # noqa: F401  (fixture)
from conftest import BACKEND_ARGS, YAMA_RUN, requires_root, tree_env, yama_run
from test_escape import place, placed_probe  # noqa: F401  (fixture)

pytestmark = requires_root

TRIES = "3000"


@pytest.fixture(scope="module")
def probe(helper, place):  # noqa: F811
    return placed_probe(helper, place, "perf_attr_probe")


@pytest.fixture
def victim():
    """A busy uid-1001 process outside any sandbox: an event with sigtrap on
    it would kill it within a millisecond of its CPU time."""
    proc = subprocess.Popen([*AS_USER, "sh", "-c", "while :; do :; done"])
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def counts(out: str) -> dict[str, int]:
    line = next((ln for ln in out.splitlines() if ln.startswith("opened=")), "")
    return {k: int(v) for k, v in (kv.split("=") for kv in line.split())}


def assert_unreached(out: str, victim) -> None:
    got = counts(out)
    assert got and got["opened"] == 0, out
    assert victim.poll() is None, f"the victim ended: {victim.returncode} " \
                                  f"(SIGTRAP is {int(signal.SIGTRAP)})"


@pytest.mark.parametrize("flip", ["race-size", "race-map"])
def test_a_raced_attr_never_opens_an_event_on_a_process_outside(probe, victim, flip):
    """yama-run started by root, the program uid 1001: thousands of opens
    while another thread flips the attr; none is given, the victim lives."""
    r = yama_run("--", *AS_USER, probe, flip, victim.pid, TRIES, timeout=120)
    assert r.returncode == 0, r.stderr
    assert_unreached(r.stdout, victim)


SIBLING = 'sh -c "while :; do :; done" & v=$!; "$0" "$1" $v "$2"; s=$?; kill $v; exit $s'


@pytest.mark.parametrize("flip", ["race-size", "race-map"])
def test_a_raced_attr_under_a_yama_run_of_an_ordinary_user(probe, as_user, flip):  # noqa: F811
    """yama-run started by uid 1001: the program, in the user namespace
    yama-run gives it, races an event on a busy sibling (not a descendant:
    scope 1 refuses it, where the kernel's own rule allows it)."""
    r = as_user.run("--", "sh", "-c", SIBLING, probe, flip, TRIES, timeout=120)
    assert r.returncode == 0, r.stderr
    got = counts(r.stdout)
    assert got and got["opened"] == 0, r.stdout


SIZES = ["0", "8", "63", "64", "200", "4096", "4097", "0x2000"]


def _line(out: str) -> str:
    return next((ln for ln in out.splitlines() if ln.startswith("errno=")), out)


def _native(probe, *args) -> str:
    return _line(subprocess.run([*AS_USER, probe, *args], capture_output=True, text=True,
                                timeout=60).stdout)


def _sandboxed(probe, *args) -> str:
    return _line(yama_run("--", *AS_USER, probe, *args).stdout)


@pytest.mark.parametrize("size", SIZES)
def test_attr_size_answers_as_the_kernel(probe, size):
    """On a child of its own (allowed): the same errno as natively, and the
    same attr.size after the call (E2BIG writes the kernel's size back; 200
    and 4096 carry a non-zero byte past it, which the kernel refuses on the
    supervisor's copy: that size was lost before)."""
    native, sandboxed = _native(probe, "size", size), _sandboxed(probe, "size", size)
    assert sandboxed == native, f"native {native}, yama-run {sandboxed}"


@pytest.mark.parametrize("flags, want", [("0", "errno=EFAULT"), ("0x100", "errno=EINVAL")])
def test_unmapped_attr_answers_as_the_kernel(probe, flags, want):
    """EFAULT; with an unknown flag the kernel's EINVAL comes first."""
    native = _native(probe, "unmapped", flags)
    assert native == want
    assert _sandboxed(probe, "unmapped", flags) == native


SLOW_JUDGE = """
import time
from sandbox.modules import Module


class SlowPerf(Module):
    name = "slow_perf"

    def hooks(self):
        return {"perf_event_open"}

    def perf_event_open(self, req):
        time.sleep(0.6)          # judged slowly: the target is replaced meanwhile
        return None
"""


def test_an_event_is_never_opened_on_a_task_that_took_a_judged_number(probe, tmp_path):
    """root inside asks for an event on a child of its own; while a module
    judges it (0.6 s), the child is killed and reaped and another process
    takes its pid (clone3 set_tid). The event is not opened on that other
    process: ESRCH, the judged task being gone."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_profiles import one_module_env
    env = one_module_env(tmp_path, "slow_perf", "SlowPerf", SLOW_JUDGE)
    profile = tmp_path / "p.toml"
    profile.write_text('chain = ["slow_perf", "ptrace"]\n')
    r = yama_run("--profile", profile, "--", probe, "swap", "100", env=env, timeout=60)
    assert r.stdout.strip() == "errno=ESRCH replaced=1", r.stdout + r.stderr


# -- the uprobe PMU: attr.config1 is a pointer to a path ---------------------------------

UPROBE_TYPE = "/sys/bus/event_source/devices/uprobe/type"
needs_uprobes = pytest.mark.skipif(not os.path.exists(UPROBE_TYPE),
                                   reason="no uprobe PMU in this kernel (CONFIG_UPROBE_EVENTS)")


@pytest.fixture(scope="module")
def uprobe_probe(helper, place):  # noqa: F811
    return placed_probe(helper, place, "perf_uprobe_probe")


def _uprobe(probe, *args, sandboxed: bool, options=()) -> str:
    """The probe's answer, run as root (a uprobe needs CAP_PERFMON);
    options: yama-run's."""
    return _line(_uprobe_out(probe, *args, sandboxed=sandboxed, options=options))


def _uprobe_out(probe, *args, sandboxed: bool, options=()) -> str:
    """The probe's whole output (run as _uprobe)."""
    if sandboxed:
        return yama_run(*options, "-q", "--", probe, *args).stdout
    return subprocess.run([probe, *args], capture_output=True, text=True, timeout=60).stdout


UPROBE_CASES = [
    (["fixed", "/bin/true"], "errno=0"),
    (["end", "/bin/true"], "errno=0"),          # the page after the NUL unmapped
    (["long"], "errno=E2BIG"),                  # 4096 bytes without a NUL
    (["fixed", "/dev/null"], "errno=EINVAL"),   # not a regular file
    (["fixed", "/nonexistent"], "errno=ENOENT"),
    (["fixed", "/bin/true/"], "errno=ENOTDIR"),  # a trailing slash wants a directory
    (["fixed", ""], "errno=EINVAL"),
]


@needs_uprobes
@pytest.mark.parametrize("args, want", UPROBE_CASES, ids=[" ".join(a) for a, _ in UPROBE_CASES])
def test_uprobe_path_is_read_from_the_callers_memory(uprobe_probe, args, want):
    """root inside opens a uprobe on its child, the path at an address only
    it maps. The supervisor, which performs the call, handed the kernel the
    caller's pointer to read in its own memory: EFAULT for every case (or
    whatever string of its own lay there). Now as natively."""
    assert _uprobe(uprobe_probe, *args, sandboxed=False) == want
    assert _uprobe(uprobe_probe, *args, sandboxed=True) == want


def _string_in(pid: int, needle: bytes) -> int:
    """The address of needle in a readable file mapping of process pid."""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            if len(fields) < 6 or not fields[1].startswith("r") or "libc" not in fields[5]:
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            mem.seek(start)
            at = mem.read(end - start).find(needle)
            if at >= 0:
                return start + at
    raise AssertionError(f"no {needle!r} in the libc mappings of {pid}")


@needs_uprobes
def test_uprobe_path_unmapped_in_the_caller_is_efault(uprobe_probe):
    """config1 names an address the caller does not map but the supervisor
    does, where its libc holds "/bin/sh": natively EFAULT. yama-run's
    supervisor read the path there and opened the event (an oracle on its
    memory: an address mapped or not, and what path lies there)."""
    native = subprocess.run([uprobe_probe, "foreign"], input="1000\n", capture_output=True,
                            text=True, timeout=60).stdout
    assert _line(native) == "errno=EFAULT", native
    proc = subprocess.Popen([*YAMA_RUN, *BACKEND_ARGS, "-q", "--", uprobe_probe, "foreign"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env=tree_env())
    try:
        first = proc.stdout.readline()
        assert first.startswith("ppid="), first
        address = _string_in(int(first.split("=")[1]), b"/bin/sh\0")
        out, _ = proc.communicate(f"{address:x}\n", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _line(out) == "errno=EFAULT", out


@needs_uprobes
def test_relative_uprobe_path_is_from_the_callers_cwd(uprobe_probe):
    """A relative path names a file in the caller's cwd, as natively: the
    supervisor, in its own cwd (where no such file is), answered ENOENT."""
    where = tempfile.mkdtemp(prefix="yr-uprobe-")
    try:
        shutil.copy2("/bin/true", os.path.join(where, "probed"))
        args = ("chdir", where, "probed")
        assert _uprobe(uprobe_probe, *args, sandboxed=False) == "errno=0"
        assert _uprobe(uprobe_probe, *args, sandboxed=True) == "errno=0"
    finally:
        shutil.rmtree(where, ignore_errors=True)


def test_a_uprobe_path_never_follows_an_outsiders_proc_links(uprobe_probe):
    """Contained, a uprobe path through a process outside (/proc/PID/root,
    cwd, exe) is refused as the kernel refuses it under Landlock's domain:
    the path was handed to the kernel as text and walked in a thread of the
    supervisor's, outside the domain and past the /proc gate, and the event
    opened (found by a review: a file only the outsider reaches was probed,
    and any path behind its root tested). It is walked as the caller now,
    no magic link followed; the event is never opened."""
    outsider = subprocess.Popen(["sleep", "60"])
    try:
        for path in (f"/proc/{outsider.pid}/root/bin/true", f"/proc/{outsider.pid}/exe",
                     f"/proc/{outsider.pid}/cwd/bin/true"):
            said = _line(yama_run("--profile", "strict", "-q", "--", uprobe_probe, "fixed",
                                  path).stdout)
            assert said.startswith("errno=") and said != "errno=0", (path, said)
    finally:
        outsider.kill()
        outsider.wait()


@needs_uprobes
@pytest.mark.parametrize("profile", ["default", "strict"])
def test_a_uprobe_paths_proc_self_is_the_caller(uprobe_probe, profile):
    """/proc/self and /proc/thread-self in a uprobe path are the caller's.
    The path was walked by one openat2 in a thread of the supervisor's
    acting as the caller, where those two plain symlinks name the acting
    thread's process: whether /proc/self/fdinfo/N, task/N or map_files/RANGE
    was there told root inside the supervisor's descriptors, threads and
    memory map, contained too (found by a review). It is walked by the path
    engine now, as the caller's own opens are: the probes find exactly the
    program's descriptors, its own task and not its parent's (the
    supervisor), as natively."""
    native = _uprobe_out(uprobe_probe, "self", sandboxed=False)
    sandboxed = _uprobe_out(uprobe_probe, "self", sandboxed=True,
                            options=("--profile", profile))
    lines = sandboxed.splitlines()
    assert len(lines) == 5 and lines[0].split()[1:] == lines[1].split()[1:], sandboxed
    assert lines[2:] == native.splitlines()[2:] == [
        "own task=EINVAL", "parent's task=ENOENT", "thread-self fdinfo/0=EIO"], (native, sandboxed)


@needs_uprobes
@pytest.mark.parametrize("link", ["/proc/self/exe", "/proc/self/cwd/probed"])
def test_a_uprobe_through_the_callers_proc_links_is_as_native(uprobe_probe, link):
    """A uprobe on the program's own executable named through /proc/self/exe,
    or on a file of its cwd through /proc/self/cwd: natively the event is
    opened. The walk in the supervisor's thread refused every magic link
    (ELOOP), since the ones it met were the supervisor's; the path engine
    follows the caller's own, judged by the gate as any open's."""
    where = tempfile.mkdtemp(prefix="yr-uprobe-")
    try:
        shutil.copy2("/bin/true", os.path.join(where, "probed"))
        args = ("chdir", where, link)
        assert _uprobe(uprobe_probe, *args, sandboxed=False) == "errno=0"
        assert _uprobe(uprobe_probe, *args, sandboxed=True) == "errno=0"
    finally:
        shutil.rmtree(where, ignore_errors=True)


@needs_uprobes
def test_a_uprobe_path_follows_a_sticky_dirs_link_as_protected_symlinks_says(uprobe_probe,
                                                                             sysctl):
    """A trailing link another user owns in a sticky world-writable
    directory: with fs.protected_symlinks=1 the kernel refuses root's uprobe
    on it (EACCES); with the sysctl 0, yama-run's symlinks module applies
    the same rule (the default profile's "auto") to every follow of the
    program's, and the uprobe's walk in the supervisor's thread escaped it:
    the event was opened. The path engine asks follow_link there as for an
    open; with the module off the event is opened."""
    where = tempfile.mkdtemp(prefix="yr-uprobe-")
    try:
        os.chmod(where, 0o1777)
        shutil.copy2("/bin/true", os.path.join(where, "probed"))
        link = os.path.join(where, "link")
        os.symlink("probed", link)
        os.lchown(link, 1001, 1001)
        sysctl("fs.protected_symlinks", 1)
        assert _uprobe(uprobe_probe, "fixed", link, sandboxed=False) == "errno=EACCES"
        sysctl("fs.protected_symlinks", 0)
        assert _uprobe(uprobe_probe, "fixed", link, sandboxed=False) == "errno=0"
        proc = yama_run("-v", "--", uprobe_probe, "fixed", link)
        assert _line(proc.stdout) == "errno=EACCES", proc.stdout + proc.stderr
        assert any("symlinks" in ln and "perf_event_open" in ln
                   for ln in proc.stderr.splitlines()), proc.stderr
        off = ("--set", "symlinks.protected=0")
        assert _uprobe(uprobe_probe, "fixed", link, sandboxed=True, options=off) == "errno=0"
    finally:
        shutil.rmtree(where, ignore_errors=True)
