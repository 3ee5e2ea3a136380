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

import json
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

from conftest import public_copy, requires_root, yama_run

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


# -- the ptrace module's rule settled in C (csrc/ptrace_fast.c) -------------------------
#
# C settles ATTACH-mode calls itself while the ptrace module alone judges them:
# allows at once, denials once nobody reads them (past the first denial and the
# journal's burst of 100: the loops below make 300 calls so that most are C's).
# Each attack makes one of C's facts lie if it were kept or taken too early.

REPEAT = 300
PTRACE_HELPERS = READ_OF + textwrap.dedent(r"""
    libc.ptrace.restype = ctypes.c_long
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    def reads(pid, n=%d):
        return sorted({read_of(pid) for _ in range(n)})
    def burn_in():
        # 120 denials (of init): past the first one and the journal's burst,
        # C settles denials alone from here on
        return reads(1, 120)
    def parent_of(pid):
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    def family():
        # caller -> mid -> grandchild; mid waits for a byte, then exits
        r, w = os.pipe()
        go_r, go_w = os.pipe()
        mid = os.fork()
        if mid == 0:
            g = os.fork()
            if g == 0:
                time.sleep(60)
                os._exit(0)
            os.write(w, str(g).encode())
            os.read(go_r, 1)
            os._exit(0)
        return mid, int(os.read(r, 32)), go_w
    def orphan(mid, grandchild, go_w):
        os.write(go_w, b"x")
        os.waitpid(mid, 0)
        while parent_of(grandchild) == mid:
            time.sleep(0.01)
""" % REPEAT)


def test_reparented_grandchild_refused_from_then_on():
    """The walk is never kept: once the grandchild's parent exits, it is the
    subreaper's (the supervisor's), no longer the caller's descendant, and
    every read is refused (Yama: task_is_descendant follows real_parent now)."""
    code = PTRACE_HELPERS + textwrap.dedent(r"""
        burn_in()
        mid, g, go = family()
        before = reads(g)
        orphan(mid, g, go)
        print(before, reads(g), flush=True)
        os.kill(g, 9)
    """)
    done = yama_run("--set", "ptrace.scope=1", "--", *AS_1001, sys.executable, "-c", code)
    assert done.stdout.strip() == "['Bad-address'] ['Operation-not-permitted']", \
        (done.stdout, done.stderr)


def test_tracer_keeps_its_tracee_after_reparenting():
    """An attach let through by C is remembered before the kernel attaches:
    the tracer's tracee, reparented away, is still its to read (the module's
    exception: the caller already traces it), never refused by a walk alone."""
    code = PTRACE_HELPERS + textwrap.dedent(r"""
        burn_in()
        mid, g, go = family()
        seized = libc.ptrace(0x4206, g, None, None)      # PTRACE_SEIZE
        orphan(mid, g, go)
        print(seized, reads(g), flush=True)
        os.kill(g, 9)
    """)
    done = yama_run("--set", "ptrace.scope=1", "--", *AS_1001, sys.executable, "-c", code)
    assert done.stdout.strip() == "0 ['Bad-address']", (done.stdout, done.stderr)


def test_cleared_declaration_refuses_every_later_read():
    """A PR_SET_PTRACER declaration hands the decision to the module for the
    rest of the run: after the declarer clears it, each of many reads is
    refused, none answered by C from before the declaration."""
    # The reader and the declarer are siblings: only the declaration allows.
    outer = PTRACE_HELPERS + textwrap.dedent(r"""
        import subprocess
        PR_SET_PTRACER = 0x59616d61
        r, w = os.pipe()
        go_r, go_w = os.pipe()
        reader_r, reader_w = os.pipe()
        declarer = os.fork()
        if declarer == 0:
            reader = int(os.read(reader_r, 32))
            libc.prctl(PR_SET_PTRACER, reader, 0, 0, 0)
            os.write(w, b"d")
            os.read(go_r, 1)
            libc.prctl(PR_SET_PTRACER, 0, 0, 0, 0)
            os.write(w, b"c")
            time.sleep(60)
            os._exit(0)
        reader = os.fork()
        if reader == 0:
            burn_in()
            os.read(r, 1)
            declared = reads(declarer, 3)
            os.write(go_w, b"x")
            os.read(r, 1)
            print(declared, reads(declarer), flush=True)
            os._exit(0)
        os.write(reader_w, str(reader).encode())
        os.waitpid(reader, 0)
        os.kill(declarer, 9)
    """)
    done = yama_run("--set", "ptrace.scope=1", "--", *AS_1001, sys.executable, "-c", outer)
    assert done.stdout.strip() == "['Bad-address'] ['Operation-not-permitted']", \
        (done.stdout, done.stderr)


# The caller (root without CAP_SYS_PTRACE: C decides for it, and it may set
# ns_last_pid) reads an older sibling, refused by its age alone; the sibling
# is reaped and the caller's own new child takes its number: that number
# must be read as the child's (allowed), never with the old process's age.
AGE_CALLER = PTRACE_HELPERS + textwrap.dedent(r"""
    older, go = int(sys.argv[1]), sys.argv[2]
    burn_in()
    print(reads(older), flush=True)
    while not os.path.exists(go):
        time.sleep(0.01)
    child = None
    for _ in range(200):
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(older - 1))
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        if pid == older:
            child = pid
            break
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    print(reads(child) if child else "not-reused", flush=True)
    if child:
        os.kill(child, 9)
""")

AGE_ORCHESTRATOR = textwrap.dedent(r"""
    import os, subprocess, sys, time
    caller_py, go = sys.argv[1], sys.argv[2]
    older = subprocess.Popen(["sleep", "60"])
    time.sleep(0.05)
    caller = subprocess.Popen(
        ["setpriv", "--inh-caps=-sys_ptrace", "--bounding-set=-sys_ptrace",
         sys.executable, caller_py, str(older.pid), go], stdout=subprocess.PIPE, text=True)
    first = caller.stdout.readline().strip()
    older.kill()
    older.wait()
    open(go, "w").close()
    second = caller.stdout.readline().strip()
    caller.wait()
    print(first, "|", second, flush=True)
""")


def test_reused_number_of_an_older_process_is_the_new_childs(public_dir):
    caller, orchestrator, go = (public_dir / "caller.py", public_dir / "orch.py",
                                public_dir / "go")
    caller.write_text(AGE_CALLER)
    orchestrator.write_text(AGE_ORCHESTRATOR)
    done = yama_run("--set", "ptrace.scope=1", "--", sys.executable, orchestrator, caller, go,
                    timeout=120)
    first, _, second = done.stdout.strip().partition(" | ")
    if second == "not-reused":
        pytest.skip("the pid could not be reused (a busy machine)")
    assert first == "['Operation-not-permitted']", (done.stdout, done.stderr)
    assert second == "['Bad-address']", (done.stdout, done.stderr)


# -- C's answers are the module's, and every denial is counted --------------------------

MATRIX = PTRACE_HELPERS + textwrap.dedent(r"""
    mid, g, go = family()
    child = os.fork()
    if child == 0:
        time.sleep(60)
        os._exit(0)
    sibling = int(sys.argv[1])
    outside = int(sys.argv[2])
    burn_in()
    time.sleep(0.1)
    print(" ".join(",".join(reads(p, 20)) for p in (child, g, sibling, os.getppid(), outside, 1)),
          flush=True)
    for p in (child, g):
        os.kill(p, 9)
    os.write(go, b"x")
""")


@pytest.mark.parametrize("scope", [1, 2, 3])
def test_c_and_the_module_answer_alike(public_dir, scope):
    """The same reads (a child, a grandchild, a sibling, the parent, an
    outsider of the caller's uid, init) with C settling and with every call
    handed to the module (YAMA_RUN_NO_FAST_PATH=1): the same answers."""
    prog = public_dir / "matrix.py"
    prog.write_text(MATRIX)
    outsider = subprocess.Popen([*AS_1001, "sleep", "60"])
    try:
        runs = []
        for env in (None, {**os.environ, "YAMA_RUN_NO_FAST_PATH": "1"}):
            as_1001 = " ".join(AS_1001)
            script = (f"{as_1001} sleep 60 & s=$!; {as_1001} {sys.executable} {prog} $s "
                      f"{outsider.pid}; kill $s")
            done = yama_run("--set", f"ptrace.scope={scope}", "--", "sh", "-c", script,
                            env=env)
            runs.append(done.stdout.strip())
    finally:
        _reap_all([outsider])
    assert runs[0] == runs[1], runs
    answers = runs[0].split()
    allowed = "Bad-address" if scope == 1 else "Operation-not-permitted"
    assert answers[:2] == [allowed, allowed], runs
    assert answers[2:] == ["Operation-not-permitted"] * 4, runs


def test_denials_settled_in_c_are_counted(tmp_path):
    """No -v, no log: past the journal's burst C settles the denials alone;
    the journal still accounts for every one (recorded, or counted as not
    recorded), as if the module had denied each."""
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    code = PTRACE_HELPERS + "print(reads(1))"
    done = yama_run("--set", "ptrace.scope=1", "--", *AS_1001, sys.executable, "-c", code,
                    env=env)
    assert done.stdout.strip() == "['Operation-not-permitted']", (done.stdout, done.stderr)
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("yama-run:")]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("yama-run: ptrace: denied process_vm_readv of 1 ("), lines
    kept = tmp_path / "state" / "yama-run" / "denials.jsonl"
    if not kept.exists():
        pytest.skip("denials go to systemd-journald here")
    records = [json.loads(line) for line in kept.read_text().splitlines()]
    recorded = sum(1 for r in records if r.get("action") == "deny")
    not_recorded = sum(r.get("count", 0) for r in records if r.get("action") == "not-recorded")
    assert recorded >= 100 and recorded + not_recorded == REPEAT, (recorded, not_recorded)


def test_verbose_says_every_denial():
    """With -v every denial is the module's, with its own line: C settles
    none of them silently."""
    code = PTRACE_HELPERS + "print(reads(1, 150))"
    done = yama_run("-v", "--set", "ptrace.scope=1", "--", *AS_1001, sys.executable, "-c", code)
    assert done.stdout.strip() == "['Operation-not-permitted']", (done.stdout, done.stderr)
    said = [ln for ln in done.stderr.splitlines()
            if ln.startswith("yama-run: ptrace: denied process_vm_readv of 1 (")]
    assert len(said) == 150, done.stderr[-2000:]
    assert all(ln.endswith(": not a descendant") for ln in said)


def test_clearing_ptracer_answered_alike_with_or_without_c():
    """prctl(PR_SET_PTRACER, 0) is emulated (this kernel, without Yama, says
    EINVAL): 0 each time, settled in C while nothing was ever declared; with
    -v each call is the module's and said."""
    code = textwrap.dedent(r"""
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        print([libc.prctl(0x59616d61, 0, 0, 0, 0) for _ in range(5)])
    """)
    for flags in ([], ["-v"]):
        done = yama_run(*flags, "--set", "ptrace.scope=1", "--", *AS_1001, sys.executable,
                        "-c", code)
        assert done.stdout.strip() == "[0, 0, 0, 0, 0]", (flags, done.stdout, done.stderr)
        said = [ln for ln in done.stderr.splitlines() if "emulated PR_SET_PTRACER clear by" in ln]
        assert len(said) == (5 if flags else 0), (flags, done.stderr)


# -- the caller's root, kept ---------------------------------------------------------------

@pytest.fixture
def new_root():
    """A directory with a file "marker", to become a root."""
    d = Path(tempfile.mkdtemp(prefix="yr-root-", dir="/tmp"))
    d.chmod(0o755)
    (d / "marker").write_text("m\n")
    (d / "marker").chmod(0o644)
    yield d
    try:
        (d / "old").rmdir()
    except OSError:
        pass
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("mode, prefix", [
    pytest.param("chroot-thread", [], id="chroot-by-another-thread"),
    pytest.param("chroot-thread", [*AS_1001, "unshare", "-r"], id="chroot-in-unshare-r"),
    pytest.param("pivot-root", ["unshare", "-rm"], id="pivot-root-by-the-parent"),
])
def test_a_root_moved_by_another_task_is_the_one_walked(helper, new_root, mode, prefix):
    """The supervisor keeps each caller's root once opened (issue 17). A
    root moved by another task, after the caller's root was kept (a thread
    that shares its fs_struct chroots; its parent pivot_roots the mount
    namespace), must be the one its next absolute path is walked from: a
    kept old root would let it reach /etc/hostname outside its new root.
    /marker is found, /etc/hostname is not, under yama-run as natively."""
    probe, where = public_copy(helper("root_probe"), "root_probe")
    try:
        cmd = [*prefix, probe, mode, str(new_root)]
        want = "hostname=ENOENT marker=OK"
        native = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        assert native.stdout.strip() == want, native.stdout + native.stderr
        if (new_root / "old").exists():
            (new_root / "old").rmdir()           # pivot_root's put_old, empty again
        r = yama_run("--", *cmd, timeout=60)
        assert r.stdout.strip() == want, r.stdout + r.stderr
    finally:
        shutil.rmtree(where, ignore_errors=True)


def test_a_thread_s_exec_from_a_mount_namespace_of_its_own_is_walked_there(helper, new_root):
    """The leader's root kept, a thread cloned with CLONE_THREAD|CLONE_NEWNS
    (after unshare(CLONE_NEWUSER): no call a route sees) mounts a tmpfs over
    a directory and execs: the new program takes the leader's tid, and the
    supervisor walked its paths from the leader's kept root, in the mount
    namespace without the tmpfs: it opened the file the tmpfs hides. An
    execve by a thread other than the leader now ends the keeping of roots:
    ENOENT, as natively."""
    probe, where = public_copy(helper("root_probe"), "root_probe")
    try:
        cmd = [*AS_1001, probe, "thread-exec", str(new_root)]
        native = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        assert native.stdout.strip() == "marker=ENOENT", native.stdout + native.stderr
        r = yama_run("--", *cmd, timeout=60)
        assert r.stdout.strip() == "marker=ENOENT", r.stdout + r.stderr
    finally:
        shutil.rmtree(where, ignore_errors=True)
