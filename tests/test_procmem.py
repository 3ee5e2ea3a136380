"""/proc/PID/mem under ptrace.scope: opening another process's mem is an
ATTACH-mode ptrace access check (proc_mem_open), so Yama makes it EACCES for a
process the caller may not attach to (KERNEL-SEMANTICS.md 1 and 5).

tests/helpers/mem_probe.c: an actor B (uid 1001, or root) opens, O_RDWR, the
mem file of itself (/proc/self, /proc/thread-self, its pid, its task dir, from
a second thread too), of its child C, of its sibling A (several path forms:
/proc/A/mem, /proc/A/task/TID/mem for the leader and another thread, through a
dirfd, openat2, the i386 open) and of its parent P. A success also reads a
marker at a fixed address through the descriptor, so "0" means the caller got
the memory of the process it named: /proc/self must be the caller's, never the
supervisor's. This kernel has no Yama: natively every open succeeds.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import requires_root, yama_run
from helpers.pathcases import DEFAULT_PROFILE

pytestmark = [requires_root,
              pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv")]

AS_1001 = ["setpriv", "--reuid=1001", "--regid=1001", "--clear-groups"]
SELF = ["self", "thread-self", "self-pid", "self-task", "self-from-thread",
        "thread-self-from-thread"]
CHILD = ["child", "child-task", "child-thread"]
OTHERS = ["sibling", "sibling-i386", "sibling-task", "sibling-thread", "sibling-dirfd",
          "sibling-taskdirfd", "sibling-openat2", "sibling-via-symlink",
          "sibling-via-self-dotdot", "sibling-via-proc-fd", "sibling-via-cwd", "parent"]
FORMS = SELF + CHILD + OTHERS


def BUG(reason: str):
    return pytest.mark.xfail(reason=f"BUG: {reason}", strict=True)


@pytest.fixture(scope="module")
def probe(helper):
    where = tempfile.mkdtemp(prefix="yr-mem-")
    os.chmod(where, 0o755)
    exe = os.path.join(where, "mem_probe")
    shutil.copy(helper("mem_probe"), exe)
    os.chmod(exe, 0o755)
    yield exe
    shutil.rmtree(where, ignore_errors=True)


def parse(stdout: str) -> dict:
    return dict(line.split(" ", 1) for line in stdout.splitlines() if " " in line)


def expected(scope: int, root: bool) -> dict:
    """The result of each form under Yama at this scope."""
    want = dict.fromkeys(FORMS, "0")
    if scope == 1 and not root:              # CAP_SYS_PTRACE exempts at 1 and 2
        for form in OTHERS:
            want[form] = "EACCES"
    if scope == 3 or (scope == 2 and not root):
        for form in CHILD + OTHERS:
            want[form] = "EACCES"
    return want


def profile(tmp_path, scope):
    path = tmp_path / "ptrace.toml"
    path.write_text(f'chain = ["ptrace"]\n\n[ptrace]\nscope = {scope}\n')
    return str(path)


def test_native_control(probe):
    proc = subprocess.run([*AS_1001, probe], capture_output=True, text=True, timeout=30)
    assert parse(proc.stdout) == dict.fromkeys(FORMS, "0"), proc.stdout + proc.stderr


@pytest.mark.parametrize("mode", ["fast", "nofast"])
@pytest.mark.parametrize("who", ["1001", "root"])
@pytest.mark.parametrize("scope", [0, 1, 2, 3])
def test_scope(probe, tmp_path, scope, who, mode):
    env = dict(os.environ)
    if mode == "nofast":
        env["YAMA_RUN_NO_FAST_PATH"] = "1"
    proc = yama_run("--profile", profile(tmp_path, scope), "--",
                    *(AS_1001 if who == "1001" else []), probe, env=env, timeout=60)
    got = parse(proc.stdout)
    want = expected(scope, who == "root")
    assert got == want, f"rc={proc.returncode}\n{proc.stdout}{proc.stderr}"


def test_default_profile_is_scope_1(probe, sysctl):
    for name in ("symlinks", "fifos", "regular"):
        sysctl(f"fs.protected_{name}", 0)
    proc = yama_run("--profile", DEFAULT_PROFILE, "--", *AS_1001, probe, timeout=60)
    assert parse(proc.stdout) == expected(1, False), proc.stdout + proc.stderr


def test_denial_is_audited(probe, tmp_path):
    log = tmp_path / "audit.jsonl"
    proc = yama_run("--profile", profile(tmp_path, 1), "--audit-log", log, "--", *AS_1001,
                    probe, timeout=60)
    got = parse(proc.stdout)
    assert got["sibling"] == "EACCES", proc.stdout + proc.stderr
    records = [json.loads(line) for line in log.read_text().splitlines()]
    mine = [r for r in records if r.get("syscall") in ("openat", "openat2", "open")]
    assert len(mine) == len(OTHERS), records       # one per denied open, nothing for self
    assert {(r["module"], r["hook"], r["errno"], r["action"]) for r in mine} == {
        ("ptrace", "ptrace_access_check", "EACCES", "deny")}
    assert sorted(r["syscall"] for r in mine) == sorted(
        ["openat"] * (len(OTHERS) - 2) + ["openat2", "open"])   # i386 open keeps its name


def test_permissive_opens_and_records(probe, tmp_path):
    log = tmp_path / "audit.jsonl"
    proc = yama_run("--profile", profile(tmp_path, 1), "--permissive", "--audit-log", log,
                    "--", *AS_1001, probe, timeout=60)
    assert parse(proc.stdout) == dict.fromkeys(FORMS, "0"), proc.stdout + proc.stderr
    actions = [json.loads(line)["action"] for line in log.read_text().splitlines()]
    assert actions.count("would-deny") == len(OTHERS)


@BUG("io_uring is not covered: IORING_OP_OPENAT opens a sibling's /proc/PID/mem at "
     "scope 1 (open() of it is EACCES), so the memory of a non-descendant is readable")
def test_io_uring_cannot_open_a_siblings_mem(helper, tmp_path):
    where = tempfile.mkdtemp(prefix="yr-uring-")
    os.chmod(where, 0o755)
    probe = os.path.join(where, "uring_probe")
    shutil.copy(helper("uring_probe"), probe)
    os.chmod(probe, 0o755)
    try:
        proc = yama_run("--profile", profile(tmp_path, 1), "--", *AS_1001, "sh", "-c",
                        f'sleep 20 & p=$!; {probe} /proc/$p/mem; kill $p', timeout=60)
    finally:
        shutil.rmtree(where, ignore_errors=True)
    out = parse(proc.stdout)
    assert out.get("SETUP") != "0" or out.get("OPENAT") == "EACCES", proc.stdout + proc.stderr
