"""Containment as a choice (sandbox/modules/contain.py; docs/containment.md).

On: nothing inside signals, traces or acts on a process outside the sandbox;
every such call is refused by the contain module, audited and said as such,
with Landlock's domain as the kernel's backstop (mode "landlock") or without
it (mode "hooks": YAMA_RUN_NO_LANDLOCK=1, as on a kernel without Landlock),
or with the domain of a kernel before 6.12 (mode "ptrace-domain":
YAMA_RUN_LANDLOCK_ABI=5, no signal scope: the signals are the hooks'). Off: the kernel's rules alone, for targets inside and outside.
In every mode, yama-run's own processes are out of reach (issue 12 item 5:
prlimit(RLIMIT_CPU) from inside killed the supervisor).

Each case runs tests/helpers/contain_probe.c, which makes the calls and
reports their errnos and what the target looks like afterwards (its CPU
limit, nice value, allowed CPUs, scheduling policy, whether it lives)."""
from __future__ import annotations

import errno
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile

import pytest

from conftest import YAMA_RUN, public_copy, requires_root, tree_env, yama_run
from test_hostile import results

pytestmark = requires_root

UID = 1001
AS_USER = ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups"]
TIMEOUT = 40
NO_LANDLOCK = {**os.environ, "YAMA_RUN_NO_LANDLOCK": "1"}
ABI_5 = {**os.environ, "YAMA_RUN_LANDLOCK_ABI": "5"}
MODES = {"landlock": None, "hooks": NO_LANDLOCK, "ptrace-domain": ABI_5}

# Every call that acts on another process by pid or pidfd, as the probe names it.
ACTS = "kill0,prlimit,nice,affinity,sched,ioprio,migrate,movepages,madvise,mrelease,perf,attach"
REFUSED = {"KILL0": "EPERM", "PRLIMIT": "EPERM", "NICE": "EPERM", "AFFINITY": "EPERM",
           "SCHED": "EPERM", "IOPRIO": "EPERM", "MIGRATE": "EPERM", "MOVEPAGES": "EPERM",
           "MADVISE": "EPERM", "MRELEASE": "EPERM", "PERF": "EACCES", "ATTACH": "EPERM"}
# natively, root on a process of its own uid (process_mrelease: only a dying
# one); uid 1001 lacks CAP_SYS_NICE, which process_madvise of another needs
NATIVE = {op: "0" for op in REFUSED} | {"MRELEASE": "EINVAL"}
NATIVE_USER = NATIVE | {"MADVISE": "EPERM"}
UNTOUCHED = {"AFTER_CPU_LIMIT": "unlimited", "AFTER_NICE": "0", "AFTER_POLICY": "0",
             "AFTER_ALIVE": "1"}
CHANGED = {"AFTER_CPU_LIMIT": "1", "AFTER_NICE": "19", "AFTER_POLICY": "3", "AFTER_CPUS": "1",
           "AFTER_ALIVE": "1"}


@pytest.fixture(scope="session")
def cprobe(helper):
    """The probe, -no-pie, in a directory every uid can reach."""
    exe, where = public_copy(helper("contain_probe", "-no-pie"), "contain_probe")
    yield exe
    shutil.rmtree(where, ignore_errors=True)


@pytest.fixture(scope="session")
def profiles():
    """In a directory every uid can read (pytest's own are 0700)."""
    from pathlib import Path
    d = Path(tempfile.mkdtemp(prefix="yama-run-contain-profiles-"))
    d.chmod(0o755)
    out = {}
    for name, on in (("contained", "true"), ("open", "false")):
        path = d / f"{name}.toml"
        path.write_text(f'chain = ["contain", "ptrace"]\n\n[contain]\nenabled = {on}\n\n'
                        f'[ptrace]\nscope = 1\n')
        path.chmod(0o644)
        out[name] = str(path)
    yield out
    shutil.rmtree(d, ignore_errors=True)


def start_outsider(cprobe, prefix=()):
    proc = subprocess.Popen([*prefix, cprobe, "wait"], stdout=subprocess.PIPE, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 10)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("READY "):
        proc.kill()
        proc.wait()
        pytest.fail(f"outsider did not start: {line!r}")
    return proc


def stop(proc):
    proc.kill()                     # our own Popen child, by its pid
    proc.wait(timeout=10)
    proc.stdout.close()


@pytest.fixture
def outsider(cprobe):
    """An unrelated process of uid 1001 outside any sandbox."""
    proc = start_outsider(cprobe, AS_USER)
    yield proc.pid
    stop(proc)


@pytest.fixture
def root_outsider(cprobe):
    proc = start_outsider(cprobe)
    yield proc.pid
    stop(proc)


def run(profile, *cmd, env=None, options=(), backend=()):
    r = yama_run(*backend, "--profile", profile, *options, "--", *cmd, env=env, timeout=TIMEOUT)
    return r, results(r.stdout)


def after(got: dict) -> dict:
    return {k: v for k, v in got.items() if k.startswith("AFTER_") and k != "AFTER_CPUS"}


# -- on: nothing outside is reached ------------------------------------------------

@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("as_user", [True, False], ids=["uid1001", "root"])
def test_contained_refuses_every_call_aimed_outside(cprobe, profiles, outsider, root_outsider,
                                                    mode, as_user):
    """uid 1001 on an outsider of its own uid, root on a root outsider: the
    kernel would allow every call (test_native_control_reaches_outsiders);
    contained, each is refused and the outsider is left as it was."""
    target = outsider if as_user else root_outsider
    r, got = run(profiles["contained"], *(AS_USER if as_user else ()), cprobe, "act",
                 f"pid={target}", ACTS, env=MODES[mode])
    assert r.returncode == 0, r
    assert {k: got[k] for k in REFUSED} == REFUSED, r.stdout
    assert after(got) == UNTOUCHED, r.stdout


def test_native_control_reaches_outsiders(cprobe, outsider):
    """Without yama-run the same calls all work on a process of one's uid."""
    r = subprocess.run([*AS_USER, cprobe, "act", f"pid={outsider}", ACTS],
                       capture_output=True, text=True, timeout=TIMEOUT)
    got = results(r.stdout)
    assert {k: got[k] for k in NATIVE_USER} == NATIVE_USER, r.stdout
    assert {k: got[k] for k in CHANGED} == CHANGED, r.stdout


@pytest.mark.parametrize("mode", list(MODES))
def test_contained_acts_inside(cprobe, profiles, mode):
    """Inside the sandbox, containment changes nothing: a child is reached."""
    r, got = run(profiles["contained"], *AS_USER, cprobe, "act", "child", ACTS,
                 env=MODES[mode])
    assert {k: got[k] for k in NATIVE_USER} == NATIVE_USER, r.stdout
    assert {k: got[k] for k in CHANGED} == CHANGED, r.stdout


@pytest.mark.parametrize("mode", list(MODES))
def test_contained_kill_is_audited_as_containments(cprobe, profiles, outsider, tmp_path, mode):
    log = tmp_path / "audit.jsonl"
    r, got = run(profiles["contained"], *AS_USER, cprobe, "act", f"pid={outsider}",
                 "kill0,prlimit", env=MODES[mode], options=("-v", "--audit-log", log))
    assert got["KILL0"] == got["PRLIMIT"] == "EPERM", r.stdout
    lines = [line for line in r.stderr.splitlines() if "contain: denied" in line]
    assert any(f"contain: denied kill (signal 0) of {outsider} (contain_probe) by " in line
               and line.endswith(": outside the sandbox") for line in lines), r.stderr
    assert any(f"contain: denied prlimit64 RLIMIT_CPU of {outsider}" in line
               for line in lines), r.stderr
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert {(rec["module"], rec["hook"], rec["syscall"], rec["errno"], rec["target"])
            for rec in records} == {("contain", "task_kill", "kill", "EPERM", outsider),
                                    ("contain", "task_prlimit", "prlimit64", "EPERM", outsider)}
    assert all(rec["reason"] == "outside the sandbox" for rec in records), records


def test_contained_ptrace_backend(cprobe, profiles, outsider):
    """The ptrace backend routes the same calls: the same refusals."""
    r, got = run(profiles["contained"], *AS_USER, cprobe, "act", f"pid={outsider}",
                 "kill0,prlimit,nice,affinity", backend=("--backend", "ptrace"))
    if "python-ptrace" in r.stderr:
        pytest.skip("the ptrace backend needs python-ptrace")
    assert {k: got.get(k) for k in ("KILL0", "PRLIMIT", "NICE", "AFFINITY")} == \
        {k: "EPERM" for k in ("KILL0", "PRLIMIT", "NICE", "AFFINITY")}, r
    assert after(got) == UNTOUCHED, r.stdout


@pytest.mark.parametrize("mode", list(MODES))
def test_contained_group_signal_spares_outsiders(profiles, mode):
    """kill(0) from a program sharing its process group with a process
    outside (as in yama-run's caller's pipeline) and with the supervisor:
    the member inside gets it, the others do not (Landlock's scope, or the
    hooks' emulation)."""
    outside = subprocess.Popen(["sleep", "30"], process_group=0)
    try:
        script = "trap 'echo GOT' USR1; sleep 0.2; kill -USR1 0; echo KILL $?; sleep 0.2"
        r = subprocess.run([*YAMA_RUN, "--profile", profiles["contained"], "--",
                            "sh", "-c", script], capture_output=True, text=True,
                           timeout=TIMEOUT, env=tree_env(MODES[mode]),
                           process_group=outside.pid)
        assert "GOT" in r.stdout and "KILL 0" in r.stdout, r
        assert r.returncode == 0, r
        assert outside.poll() is None, "the process outside was signalled"
    finally:
        outside.kill()
        outside.wait()


# -- off: the kernel's rules, inside and outside --------------------------------------

def test_not_contained_reaches_outside_as_the_kernel(cprobe, profiles, outsider):
    r, got = run(profiles["open"], *AS_USER, cprobe, "act", f"pid={outsider}", ACTS.replace(
        ",attach", ""))
    expect = {k: v for k, v in NATIVE_USER.items() if k != "ATTACH"}
    assert {k: got[k] for k in expect} == expect, r.stdout
    assert {k: got[k] for k in CHANGED} == CHANGED, r.stdout


def test_not_contained_kill_of_an_outside_process_of_the_same_user(profiles):
    """14 item 1: kill of an outside same-user process works, as natively."""
    outside = subprocess.Popen([*AS_USER, "sleep", "30"])
    try:
        r = yama_run("--profile", profiles["open"], "--", *AS_USER, "kill", "-TERM",
                     str(outside.pid), timeout=TIMEOUT)
        assert r.returncode == 0, r
        assert outside.wait(timeout=10) == -15
    finally:
        if outside.poll() is None:
            outside.kill()
            outside.wait()


def test_verbose_says_whether_contained(profiles):
    on = yama_run("-v", "--profile", profiles["contained"], "--", "true")
    assert "yama-run: contain: on: nothing inside may signal, trace or act on a process " \
           "outside the sandbox" in on.stderr, on.stderr
    off = yama_run("-v", "--profile", profiles["open"], "--", "true")
    assert "yama-run: contain: off: processes outside the sandbox are reached as the " \
           "kernel allows" in off.stderr, off.stderr
    bare = yama_run("-v", "--no-profile", "--", "true")
    assert "yama-run: not contained:" in bare.stderr, bare.stderr


@pytest.mark.parametrize("mode", list(MODES))
def test_the_domain_leaves_the_programs_files_alone(profiles, tmp_path, mode):
    """The domain of a kernel before 6.12 must handle a file access: it
    handles reparenting and allows it under /, so a file moved and linked
    into another directory works as in every other mode. What it costs,
    and -v says: the kernel refuses mounts inside (root in a user namespace
    of its own mounts a tmpfs in the other modes)."""
    from sandbox._yama import lib
    if mode == "ptrace-domain" and lib.yr_landlock_abi() < 2:
        pytest.skip("kernel lacks Landlock ABI 2")
    script = ("mkdir a b && echo x > a/f && mv a/f b/f && ln b/f a/g && cat a/g && "
              "unshare -Urm sh -c 'mount -t tmpfs none /mnt' && echo mounted")
    r = yama_run("-v", "--profile", profiles["contained"], "--", "sh", "-c", script,
                 env=MODES[mode], timeout=TIMEOUT, cwd=str(tmp_path))
    assert r.stdout.split("\n")[0] == "x", r.stdout + r.stderr
    refused = mode == "ptrace-domain"
    assert ("mounted" in r.stdout) is not refused, r.stdout + r.stderr
    assert ("mounts refused inside" in r.stderr) is refused, r.stderr


def test_no_profile_is_not_contained(profiles, outsider):
    """--no-profile: every bundled module with its default: the kernel's
    semantics, so a process outside of the same uid is reached."""
    r = yama_run("--no-profile", "--", *AS_USER, "kill", "-0", str(outsider), timeout=TIMEOUT)
    assert r.returncode == 0, r


# -- yama-run's own processes: out of reach in every mode (issue 12 item 5) -------------

SUPERVISOR_ACTS = "prlimit,nice,affinity,sched,ioprio,migrate,movepages,madvise,mrelease,perf"
ALL_MODES = {"contained-landlock": ("contained", None),
             "contained-hooks": ("contained", NO_LANDLOCK),
             "contained-ptrace-domain": ("contained", ABI_5),
             "not-contained": ("open", None)}


@pytest.mark.parametrize("mode", list(ALL_MODES))
def test_root_inside_never_reaches_the_supervisor(cprobe, profiles, mode):
    """Root inside, whose capabilities pass every kernel check: prlimit
    (RLIMIT_CPU, which killed it), setpriority, sched_*, ioprio_set,
    migrate_pages, move_pages, process_madvise, process_mrelease and
    perf_event_open on the supervisor are all refused, and it is unchanged."""
    name, env = ALL_MODES[mode]
    r, got = run(profiles[name], cprobe, "act", "ppid", SUPERVISOR_ACTS, env=env)
    assert r.returncode == 0, r
    want = {k: v for k, v in REFUSED.items() if k in SUPERVISOR_ACTS.upper().split(",")}
    assert {k: got[k] for k in want} == want, r.stdout
    assert got["AFTER_CPU_LIMIT"] == "unlimited" and got["AFTER_ALIVE"] == "1", r.stdout


@pytest.fixture(scope="session")
def user_yama_run():
    """The command that runs this tree's yama-run as uid 1001. The test
    interpreter may live where uid 1001 cannot read (a root-only pyenv):
    then Debian's python3 runs it, with copies of the pure-Python
    dependencies in a directory every uid can read."""
    import click
    import pyseccomp
    from pathlib import Path
    python = "/usr/bin/python3"
    where = Path(tempfile.mkdtemp(prefix="yama-run-user-site-"))   # pytest's own are 0700
    where.chmod(0o755)
    shutil.copytree(os.path.dirname(click.__file__), where / "click")
    shutil.copy(pyseccomp.__file__, where / "pyseccomp.py")
    for path in where.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cmd = [*AS_USER, "env", f"PYTHONPATH={root}:{where}", python, "-m", "sandbox.cli"]
    probe = subprocess.run([*cmd, "--version"], capture_output=True, text=True, cwd="/")
    if probe.returncode != 0:
        shutil.rmtree(where, ignore_errors=True)
        pytest.skip(f"yama-run cannot run as uid {UID} here: {probe.stderr.strip()[-200:]}")
    yield cmd
    shutil.rmtree(where, ignore_errors=True)


@pytest.mark.parametrize("mode", list(ALL_MODES))
def test_unprivileged_yama_run_keeps_its_supervisor(cprobe, profiles, user_yama_run, mode):
    """yama-run started by uid 1001: the program has the supervisor's uid,
    so the kernel would let it set the supervisor's CPU limit, nice value,
    affinity... The guard refuses them all. kill(getppid(), 0) sends
    nothing: refused where the sandbox is contained, answered as the kernel
    answers (0, the same uid) where it is not (a watchdog that lives while
    its parent lives quit at once)."""
    name, env = ALL_MODES[mode]
    proc = subprocess.run([*user_yama_run, "--profile", profiles[name], "--", cprobe,
                           "act", "ppid", SUPERVISOR_ACTS + ",kill0"],
                          capture_output=True, text=True, timeout=TIMEOUT,
                          env=env or dict(os.environ), cwd="/")
    got = results(proc.stdout)
    assert proc.returncode == 0, proc
    for op in ("PRLIMIT", "NICE", "AFFINITY", "SCHED", "IOPRIO", "MADVISE", "PERF"):
        assert got[op] in ("EPERM", "EACCES"), proc.stdout
    assert got["KILL0"] == ("EPERM" if name == "contained" else "0"), proc.stdout
    assert got["AFTER_CPU_LIMIT"] == "unlimited" and got["AFTER_NICE"] == "0", proc.stdout


@pytest.mark.parametrize("mode", list(MODES))
def test_unprivileged_yama_run_contains(cprobe, profiles, user_yama_run, outsider, mode):
    """yama-run started by uid 1001, contained: an outsider of the same uid
    is left alone, though the kernel would let the program reach it."""
    proc = subprocess.run([*user_yama_run, "--profile", profiles["contained"], "--", cprobe,
                           "act", f"pid={outsider}", "kill0,prlimit,nice,affinity,attach"],
                          capture_output=True, text=True, timeout=TIMEOUT,
                          env=MODES[mode] or dict(os.environ), cwd="/")
    got = results(proc.stdout)
    assert {k: got.get(k) for k in ("KILL0", "PRLIMIT", "NICE", "AFFINITY", "ATTACH")} == \
        {k: "EPERM" for k in ("KILL0", "PRLIMIT", "NICE", "AFFINITY", "ATTACH")}, proc
    assert after(got) == UNTOUCHED, proc.stdout


# -- /proc entries of a process outside ---------------------------------------------

# Each operation on /proc/PID/ENTRY, as "NAME RESULT" (ok or the errno's name).
PROC_OPS = r"""
import errno, os, sys
pid = sys.argv[1]
def run(name, f):
    try:
        f()
        print(name, "ok")
    except OSError as e:
        print(name, errno.errorcode[e.errno])
def access_f_ok(p):
    if not os.access(p, os.F_OK, follow_symlinks=False):
        raise OSError(errno.ENOENT, "access")
for e in ("cwd", "environ", "fd"):
    p = f"/proc/{pid}/{e}"
    run(f"lstat-{e}", lambda: os.lstat(p))
    run(f"access-{e}", lambda: access_f_ok(p))
    run(f"opath-{e}", lambda: os.close(os.open(p, os.O_PATH | os.O_NOFOLLOW)))
run("stat-cwd", lambda: os.stat(f"/proc/{pid}/cwd"))
run("read-environ", lambda: open(f"/proc/{pid}/environ", "rb").close())
run("list-fd", lambda: os.listdir(f"/proc/{pid}/fd"))
run("readlink-cwd", lambda: os.readlink(f"/proc/{pid}/cwd"))
fd = os.open(f"/proc/{pid}/environ", os.O_PATH)
run("reopen-environ", lambda: open(f"/proc/self/fd/{fd}", "rb").close())
"""
METADATA = {f"{op}-{e}": "ok" for op in ("lstat", "access", "opath")
            for e in ("cwd", "environ", "fd")}
REFUSED_PROC = {op: "EACCES" for op in ("stat-cwd", "read-environ", "list-fd", "readlink-cwd",
                                        "reopen-environ")}
# readlink is routed only without Landlock's domain, which refuses it itself
PROC_LINES = {"stat-cwd": "follow /proc/PID/cwd", "read-environ": "open /proc/PID/environ",
              "list-fd": "open /proc/PID/fd", "readlink-cwd": "readlink /proc/PID/cwd"}


def proc_ops(pid, *prefix, env=None):
    return subprocess.run([*prefix, "/usr/bin/python3", "-c", PROC_OPS, str(pid)],
                          capture_output=True, text=True, timeout=TIMEOUT, env=env)


@pytest.mark.parametrize("mode", ["landlock", "hooks"])
def test_contained_outsider_proc_metadata_as_natively(outsider, mode):
    """Contained (strict: stats and opens routed), lstat, access(F_OK) and an
    O_PATH|O_NOFOLLOW open of an outsider's cwd, environ and fd succeed, as
    natively (the kernel makes no ptrace-class check on an entry's
    metadata, nor does Landlock's rule). Before, the gate refused each
    (EACCES): `test -d /proc/PID/fd` was false."""
    native = results(proc_ops(outsider, *AS_USER).stdout)
    assert {k: native[k] for k in METADATA} == METADATA, native
    r = yama_run("--profile", "strict", "--", *AS_USER, "/usr/bin/python3", "-c", PROC_OPS,
                 outsider, env=MODES[mode], timeout=TIMEOUT)
    got = results(r.stdout)
    assert {k: got.get(k) for k in METADATA} == METADATA, (r.stdout, r.stderr)


@pytest.mark.parametrize("mode", ["landlock", "hooks"])
def test_contained_outsider_proc_refusals_are_containments(outsider, tmp_path, mode):
    """What the kernel checks against the outsider is still refused
    (EACCES): stat following cwd, reading environ, listing fd, readlink of
    cwd, and environ's O_PATH fd opened again through /proc/self/fd (the
    reopen is judged again). Each of the gate's refusals is said and
    recorded as the contain module's, as a kill of the same process is;
    before, none was."""
    log = tmp_path / "audit.jsonl"
    r = yama_run("-v", "--audit-log", log, "--profile", "strict", "--", *AS_USER,
                 "/usr/bin/python3", "-c", PROC_OPS, outsider, env=MODES[mode], timeout=TIMEOUT)
    got = results(r.stdout)
    assert {k: got.get(k) for k in REFUSED_PROC} == REFUSED_PROC, (r.stdout, r.stderr)
    said = {op for op, what in PROC_LINES.items()
            if f"contain: denied {what} of {outsider} (contain_probe) by " in r.stderr}
    expected = set(PROC_LINES) - ({"readlink-cwd"} if mode == "landlock" else set())
    assert said == expected, r.stderr
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert {(rec["module"], rec["hook"], rec["errno"], rec["target"], rec["reason"])
            for rec in records} == {("contain", "ptrace_read_access", "EACCES", outsider,
                                     "outside the sandbox")}, records
    # every record's path and operation, in order, should one be missing (the
    # reopen's was, once in a whole run of the suite: not understood yet)
    seen = [(rec.get("path"), rec.get("operation")) for rec in records]
    assert f"/proc/{outsider}/environ" in {path for path, _ in seen}, (seen, r.stdout, r.stderr)
    assert "/proc/self/fd/3" in {path for path, _ in seen}, (seen, r.stdout, r.stderr)


LAST_ACT = r"""
import os, sys
fd = os.open(f"/proc/{sys.argv[1]}/environ", os.O_PATH)
try:
    open(f"/proc/self/fd/{fd}", "rb")
    print("reopen ok")
except OSError as e:
    print("reopen", e.errno, fd)
os._exit(0)
"""


@pytest.mark.parametrize("path", ["cached", "cold"])
def test_a_refusal_the_program_ends_on_is_recorded_before_yama_run_returns(outsider, tmp_path,
                                                                           path):
    """The gate's refusal is answered in C and recorded by Python after.
    A program whose last act is refused, and which exits at once, had its
    status sent first: yama-run returned before the record was written (on
    the cached launch path, in 19 runs of 20, before the chain had loaded:
    never written at all, nor its -v line). Now the status waits for it:
    each run's log holds the record, with the caller's name, and -v says it."""
    cache = tmp_path / "cache"
    for run in range(5):
        log = tmp_path / f"audit-{run}.jsonl"
        if path == "cold":
            cache = tmp_path / f"cache-{run}"           # no plan yet: the cold way
        r = yama_run("-v", "--audit-log", log, "--profile", "strict", "--", *AS_USER,
                     "/usr/bin/python3", "-c", LAST_ACT, outsider,
                     env={**os.environ, "XDG_CACHE_HOME": str(cache)}, timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
        word, err, fd = r.stdout.split()
        assert (word, int(err)) == ("reopen", errno.EACCES), r.stdout
        records = [json.loads(line) for line in log.read_text().splitlines()]
        assert [(rec["module"], rec["path"], rec["target"], rec["comm"]) for rec in records] == \
            [("contain", f"/proc/self/fd/{fd}", outsider, "python3")], (run, r.stderr)
        assert f"contain: denied open /proc/PID/environ of {outsider} (contain_probe) by " \
               in r.stderr, (run, r.stderr)


GROUP_JOINER = r"""
import os, signal, sys, time
got = []
signal.signal(signal.SIGUSR1, lambda *_: got.append(1))
d = sys.argv[1]
deadline = time.monotonic() + 30
while not os.path.exists(f"{d}/pgid") and time.monotonic() < deadline:
    time.sleep(0.01)
os.setpgid(0, int(open(f"{d}/pgid").read()))        # joins the sandbox's group
open(f"{d}/joined", "w").close()
while not os.path.exists(f"{d}/done") and time.monotonic() < deadline:
    time.sleep(0.01)
time.sleep(0.2)                                     # a signal sent is taken by now
print("GOT" if got else "NONE", flush=True)
"""
GROUP_SIGNALLER = r"""
import errno, os, signal, sys, time
signal.signal(signal.SIGUSR1, signal.SIG_IGN)
d = sys.argv[1]
os.setpgid(0, 0)
with open(f"{d}/pgid.new", "w") as f:
    f.write(str(os.getpgrp()))
os.rename(f"{d}/pgid.new", f"{d}/pgid")
deadline = time.monotonic() + 30
while not os.path.exists(f"{d}/joined") and time.monotonic() < deadline:
    time.sleep(0.01)
try:
    signal.pidfd_send_signal(os.pidfd_open(os.getpid()), signal.SIGUSR1, None, 4)
    print("sent 0")         # PIDFD_SIGNAL_PROCESS_GROUP
except OSError as e:
    print("sent", errno.errorcode[e.errno])
open(f"{d}/done", "w").close()
"""


@pytest.mark.parametrize("mode", list(MODES))
def test_a_group_signal_by_pidfd_never_reaches_an_outsider_in_the_group(mode):
    """Contained, the program leads a process group of its own, which a
    process outside (same uid, same session) joins; the program signals its
    group through a pidfd of itself (PIDFD_SIGNAL_PROCESS_GROUP). yama-run
    sends such a signal itself (the pidfd is taken from the caller's table),
    outside Landlock's domain, whose signal scope therefore never applied:
    it now judges every member, as for kill(-pgrp), and refuses the call
    (EPERM, said as contain's). Before, in every mode, only the pidfd's own
    task was judged, and the outsider got the signal."""
    d = tempfile.mkdtemp(prefix="yama-run-group-", dir="/tmp")     # uid 1001's to write
    os.chown(d, UID, UID)
    joiner = subprocess.Popen([*AS_USER, "/usr/bin/python3", "-c", GROUP_JOINER, d],
                              stdout=subprocess.PIPE, text=True)
    try:
        r = yama_run("-v", "--profile", "strict", "--", *AS_USER, "/usr/bin/python3", "-c",
                     GROUP_SIGNALLER, d, env=MODES[mode], timeout=TIMEOUT)
        out, _ = joiner.communicate(timeout=TIMEOUT)
    finally:
        if joiner.poll() is None:
            joiner.kill()               # our own child, by its pid
            joiner.wait()
        shutil.rmtree(d, ignore_errors=True)
    assert out.strip() == "NONE", (out, r.stdout, r.stderr)
    assert r.stdout.strip() == "sent EPERM", (r.stdout, r.stderr)
    assert f"contain: denied pidfd_send_signal (signal {signal.SIGUSR1}) of {joiner.pid} " \
        in r.stderr, r.stderr


@pytest.fixture
def deep_chain(helper):
    """A chain of 300 processes of uid 1001 outside any sandbox, started
    before it: the pid of its deepest."""
    exe, where = public_copy(helper("proc_chain"), "proc_chain")
    proc = subprocess.Popen([*AS_USER, exe, "300"], stdout=subprocess.PIPE, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline() if ready else ""
    try:
        assert line.startswith("DEEPEST "), line
        yield int(line.split()[1])
    finally:
        stop(proc)                  # each link dies with its parent
        shutil.rmtree(where, ignore_errors=True)


DEEP_OPS = r"""
import subprocess, sys
outside, chain = sys.argv[1], sys.argv[2]
with open(f"/proc/{outside}/stat") as f:
    print("outside", f.read().split()[0])
inner = subprocess.Popen([chain, "50"], stdout=subprocess.PIPE, text=True)
inside = inner.stdout.readline().split()[1]
with open(f"/proc/{inside}/environ", "rb") as f:
    print("inside", len(f.read()) > 0)
inner.kill()
"""


@pytest.mark.parametrize("mode", ["landlock", "hooks"])
def test_contained_open_of_a_deep_outsider_and_a_deep_insider(helper, deep_chain, mode):
    """Contained, /proc/PID/stat of the deepest of 300 processes outside is
    read (the gate asks whether it is inside: the walk up its parents stops
    at the first process older than the supervisor, where it went on to pid
    1), and the deepest of a chain of 50 of the program's own is still
    inside: its environ is read."""
    exe, where = public_copy(helper("proc_chain"), "proc_chain")
    try:
        r = yama_run("--profile", "strict", "--", *AS_USER, "/usr/bin/python3", "-c", DEEP_OPS,
                     deep_chain, exe, env=MODES[mode], timeout=TIMEOUT)
    finally:
        shutil.rmtree(where, ignore_errors=True)
    assert r.stdout.splitlines() == [f"outside {deep_chain}", "inside True"], (r.stdout, r.stderr)
