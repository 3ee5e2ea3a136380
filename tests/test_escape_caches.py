"""Attacks on the supervisor's per-task caches (issue 17): each tries to make
a kept answer lie, and asserts that what the caller sees is the kernel's
answer for the task that lives now.

The caches keep descriptors bound to a task (pidfds, /proc/PID files), never
a bare number: a number is reused once its task is reaped, and a decision
taken for the old task is an escape when it is applied to the new one. The
attack is always the same: the cache is filled for a task, the task ends and
is reaped, and another task is made to take its number (ns_last_pid, as
root), with other facts: another parent, another pid namespace. Then the
cache is asked again.

- csrc/procinfo.c, the ancestors walk of ptrace scope 1 (kept pidfds,
  PIDFD_GET_INFO): a child that was a descendant, replaced by a process
  that is not, must be refused (EPERM), end to end under yama-run.
- csrc/harden.c, the pid namespace per task (process_vm_* of oneself is
  continued only for a caller in our pid namespace): a tid of ours reused by
  a task in another pid namespace must be said to be elsewhere.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from conftest import requires_root, yama_run

pytestmark = [requires_root,
              pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv")]

AS_1001 = ["setpriv", "--reuid=1001", "--regid=1001", "--clear-groups"]


def _set_last_pid(pid: int) -> None:
    with open("/proc/sys/kernel/ns_last_pid", "w") as f:
        f.write(str(pid))


def _reap_all(procs):
    for p in procs:
        try:
            p.kill()
        except OSError:
            pass
        p.wait()


def spawn_as_pid(pid: int, argv: list[str], offset: int = 0) -> subprocess.Popen | None:
    """Start argv so that its process (or, offset 1, the first child it
    forks) gets number pid. Other processes of the machine may take the
    number first: tried again, None if it never worked."""
    for _ in range(200):
        _set_last_pid(pid - 1 - offset)
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        if offset == 0 and p.pid == pid:
            return p
        if offset == 1 and p.pid == pid - 1:
            for _ in range(200):          # its child appears once it has forked
                if os.path.exists(f"/proc/{pid}") and _parent_of(pid) == p.pid:
                    return p
                time.sleep(0.005)
        _reap_all([p])
    return None


def _parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


# The caller: a descendant D is read (allowed at scope 1), D ends, someone
# else takes its number; reading that number again must be EPERM.
# read_of(pid): process_vm_readv of 8 bytes at an unmapped address of pid:
# "Bad-address" once the access is allowed, "Operation-not-permitted" if not.
READ_OF = textwrap.dedent(r"""
    import ctypes, os, sys, time
    libc = ctypes.CDLL(None, use_errno=True)
    class iovec(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
    buf = ctypes.create_string_buffer(8)
    def read_of(pid):
        local = iovec(ctypes.cast(buf, ctypes.c_void_p), 8)
        remote = iovec(0x1000, 8)
        rc = libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
        return "ok" if rc >= 0 else os.strerror(ctypes.get_errno()).replace(" ", "-")
""")

CALLER = READ_OF + textwrap.dedent(r"""
    child = os.fork()
    if child == 0:
        time.sleep(60)
        os._exit(0)
    time.sleep(0.2)
    before = read_of(child)
    os.kill(child, 9)
    os.waitpid(child, 0)
    print(child, before, flush=True)
    go = sys.argv[1]
    while not os.path.exists(go):
        time.sleep(0.01)
    print("after", read_of(child), flush=True)
""")


# Inside the sandbox, as root: runs the caller as uid 1001, then gives its
# dead child's number to a sibling of the caller (inside the sandbox, so no
# other rule than Yama's refuses it), then lets the caller read it again.
ORCHESTRATOR = textwrap.dedent(r"""
    import os, subprocess, sys, time
    caller_py, go = sys.argv[1], sys.argv[2]
    as_1001 = ["setpriv", "--reuid=1001", "--regid=1001", "--clear-groups"]
    caller = subprocess.Popen([*as_1001, sys.executable, caller_py, go],
                              stdout=subprocess.PIPE, text=True)
    pid, before = caller.stdout.readline().split()
    pid = int(pid)
    stranger = None
    for _ in range(200):
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(pid - 1))
        p = subprocess.Popen([*as_1001, "sleep", "60"])
        if p.pid == pid:
            stranger = p
            break
        p.kill()
        p.wait()
    open(go, "w").close()
    after = caller.stdout.readline().split()[-1] if stranger else "not-reused"
    caller.wait()
    print(before, after, flush=True)
    if stranger:
        stranger.kill()
        stranger.wait()
""")


@pytest.fixture
def public_dir():
    """A directory uid 1001 can read (pytest's tmp_path is root's only)."""
    where = tempfile.mkdtemp(prefix="yr-caches-")
    os.chmod(where, 0o755)
    yield Path(where)
    shutil.rmtree(where, ignore_errors=True)


def test_ptrace_scope1_descendant_reused_pid(public_dir):
    """The ancestors walk keeps pidfds: a number reused by a task that is
    no descendant is never answered for with the old task's parent."""
    caller, orchestrator, go = (public_dir / "caller.py", public_dir / "orch.py",
                                public_dir / "go")
    caller.write_text(CALLER)
    orchestrator.write_text(ORCHESTRATOR)
    for f in (caller, orchestrator):
        os.chmod(f, 0o644)
    done = yama_run("--set", "ptrace.scope=1", "--", sys.executable, orchestrator, caller, go,
                    timeout=120)
    words = done.stdout.split()
    assert len(words) == 2, (done.stdout, done.stderr)
    before, after = words
    if after == "not-reused":
        pytest.skip("the pid could not be reused (a busy machine)")
    # the descendant: allowed, then the kernel faults on the address
    assert before == "Bad-address", (done.stdout, done.stderr)
    # the new owner of the number is no descendant: Yama says EPERM
    assert after == "Operation-not-permitted", (done.stdout, done.stderr)


def test_ptrace_scope1_unrelated_refused_descendant_allowed():
    """The walk itself, both ways, on live tasks (kept pidfds included)."""
    code = READ_OF + textwrap.dedent(r"""
        # a grandchild: two ancestors up to the caller
        r, w = os.pipe()
        mid = os.fork()
        if mid == 0:
            g = os.fork()
            if g == 0:
                time.sleep(60)
                os._exit(0)
            os.write(w, str(g).encode())
            time.sleep(60)
            os._exit(0)
        grandchild = int(os.read(r, 32))
        time.sleep(0.2)
        for _ in range(3):
            print(read_of(grandchild), read_of(os.getppid()), flush=True)
        os.kill(grandchild, 9)
        os.kill(mid, 9)
    """)
    done = yama_run("--set", "ptrace.scope=1", "--", *AS_1001, sys.executable, "-c", code)
    lines = done.stdout.split("\n")[:3]
    assert lines == ["Bad-address Operation-not-permitted"] * 3, (done.stdout, done.stderr)


def test_pidns_cache_reused_tid_in_another_namespace():
    """harden.c keeps whether a task is in our pid namespace: a tid reused
    by a task of another pid namespace must not inherit the old answer
    (process_vm_* of "oneself" would be continued, its pid read in the
    other namespace)."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare")
    from sandbox._yama import lib
    first = subprocess.Popen(["sleep", "60"])
    try:
        assert lib.yr_in_our_pidns(first.pid) == 1
        assert lib.yr_in_our_pidns(first.pid) == 1     # from the cache
    finally:
        _reap_all([first])
    pid = first.pid
    other = spawn_as_pid(pid, ["unshare", "--pid", "--fork", "sleep", "60"], offset=1)
    if other is None:
        pytest.skip("the tid could not be reused (a busy machine)")
    try:
        assert lib.yr_in_our_pidns(pid) == 0
        assert lib.yr_in_our_pidns(pid) == 0
    finally:
        try:
            os.kill(pid, signal.SIGKILL)   # the namespace's init: unshare's end leaves it
        except OSError:
            pass
        _reap_all([other])


def test_parent_and_tgid_of_reused_pid():
    """procinfo.c's kept pidfds: the parent and the process of a reused
    number are the new task's."""
    from sandbox._yama import lib
    holder = subprocess.Popen(["sh", "-c", "sleep 60 & echo $!; wait"], stdout=subprocess.PIPE,
                              text=True)
    try:
        child = int(holder.stdout.readline())
        assert lib.yr_ppid_of(child) == holder.pid
        assert lib.yr_tgid_of(child) == child
        os.kill(child, signal.SIGKILL)
        for _ in range(200):
            if not os.path.exists(f"/proc/{child}"):
                break
            time.sleep(0.005)
        assert lib.yr_ppid_of(child) == -1            # gone: never the old answer
        again = spawn_as_pid(child, ["sleep", "60"])
        if again is None:
            pytest.skip("the pid could not be reused (a busy machine)")
        try:
            assert lib.yr_ppid_of(child) == os.getpid()
            assert lib.yr_tracer_of(child) == 0
        finally:
            _reap_all([again])
    finally:
        _reap_all([holder])
