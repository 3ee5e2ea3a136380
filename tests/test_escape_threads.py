"""An attacker's pass over yama-run's own threads, named by thread id
(docs/hostile.md, "Threads and short-lived helpers").

The program (tests/helpers/threads_probe.c) finds every thread of the
supervisor but its leader by numbers alone (pidfd_open(PIDFD_THREAD) and
PIDFD_GET_INFO, neither routed), then aims every route to a process at each
of them by its thread id: ptrace, process_vm_*, a thread pidfd (getfd,
signals, namespaces, setns, process_madvise), the kill family (signal 0:
the permission alone), the calls on a task by pid (prlimit64,
setpriority, ioprio_set, sched_set*, move_pages, migrate_pages), kcmp,
get_robust_list, perf_event_open, F_SETOWN_EX with F_OWNER_TID, and
/proc/TID/... and /proc/SUP/task/TID/... (opened, followed, read by
readlink, written). Then the short-lived threads that act as the caller
(pidfd_getfd, perf_event_open, process_madvise, O_ASYNC: csrc/creds.c
yr_syscall_as) are raced: the program makes such calls while it watches the
numbers just given and aims every route at each supervisor thread it sees.
Natively (a parent of the same uid with threads, no Yama here) every route
reaches a thread: the control tests show it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_escape import (AS_1001, BACKENDS, TIMEOUT, _have_ptrace_backend,  # noqa: F401
                         interpreter_for_1001, place, placed_probe, results)
from conftest import YAMA_RUN

BY_TID = ["attach", "seize", "vmread", "vmwrite", "getfd", "pidfd-signal",
          "pidfd-signal-thread", "pidfd-signal-pgrp", "kill", "tkill", "tgkill", "sigqueue",
          "tgsigqueue", "prlimit", "setpriority", "ioprio", "affinity", "setparam",
          "setscheduler", "setattr", "move-pages",
          "migrate-pages", "madvise", "kcmp", "robust", "ns", "setns", "perf", "perf-sigtrap",
          "setown-tid"]
PROC = ["proc-mem", "proc-environ", "proc-fd", "proc-task-mem", "proc-task-environ",
        "proc-task-fd", "proc-opath-fd", "proc-fddir", "proc-syscall", "proc-stack",
        "proc-chdir-cwd", "stat-fd", "access-cwd"]
LINKS = ["link-fd", "link-cwd", "link-exe", "link-root", "link-ns", "link-task-fd"]
WRITES = ["write-oom", "write-task-oom", "write-timerslack", "write-sched", "write-comm",
          "write-clear-refs"]
EVERY = [*BY_TID, *PROC, *LINKS, *WRITES]
# natively: attach stops the parent (its group), setns wants CAP_SYS_ADMIN,
# process_madvise takes a process's pidfd only (a thread's: ESRCH), and a
# thread's id names no process group (ESRCH)
NATIVE = [a for a in EVERY if a not in ("attach", "setns", "madvise", "pidfd-signal-pgrp")]

WHO = [pytest.param(([], AS_1001), id="root-runs-1001"),
       pytest.param(([], []), id="root-runs-root"),
       pytest.param((AS_1001, []), id="1001-runs-1001")]
MODES = {"default": (None, None),
         "contained": (True, None),
         "contained-hooks": (True, {**os.environ, "YAMA_RUN_NO_LANDLOCK": "1"})}

# the calls the short-lived threads are made for, and what is aimed at them
MAKERS = ["getfd", "perf", "madvise", "async"]
RACED = ["link-fd", "link-task-fd", "link-cwd", "link-root", "link-exe", "link-ns", "seize",
         "vmread", "kill", "tkill", "tgsigqueue", "pidfd-signal", "getfd", "proc-environ",
         "kcmp", "robust", "ns", "perf"]


@pytest.fixture(scope="module")
def probe(helper, place):   # noqa: F811
    return placed_probe(helper, place, "threads_probe")


def profile(place: Path, contained: bool | None) -> list[str]:   # noqa: F811
    """None: a copy of the bundled default profile (its chain has no contain:
    nothing can contain it live, and readlink is the kernel's alone)."""
    if contained is None:
        path = place / "threads-default.toml"
        path.write_text((Path(__file__).resolve().parent.parent / "profiles" / "default.toml")
                        .read_text())
        path.chmod(0o644)
        return ["--profile", str(path)]
    path = place / f"threads-contained{int(contained)}.toml"
    path.write_text('chain = ["contain", "ptrace", "hardlinks"]\n\n'
                    f'[contain]\nenabled = {str(contained).lower()}\n\n[ptrace]\nscope = 1\n')
    path.chmod(0o644)
    return ["--profile", str(path)]


def run(launcher, options, program, env=None, timeout=TIMEOUT,
        backend="notify") -> subprocess.CompletedProcess:
    return subprocess.run([*launcher, *YAMA_RUN, "--backend", backend, *options, "--", *program],
                          capture_output=True, text=True, timeout=timeout, env=env)


def reached(got: dict, attacks) -> dict:
    return {a: got.get(a) for a in attacks if got.get(a, "missing") in ("ok", "missing")}


# -- the control: every route reaches a thread natively --------------------------------

def test_every_route_reaches_a_thread_natively(probe):
    """uid 1001 against the threads of a parent of its own uid (dumpable),
    without yama-run: each route by thread id reaches them."""
    parent = ("import subprocess, sys, threading\n"
              "stop = threading.Event()\n"
              "for _ in range(2): threading.Thread(target=stop.wait, daemon=True).start()\n"
              "sys.exit(subprocess.run(sys.argv[1:]).returncode)\n")
    out = subprocess.run([*AS_1001, "/usr/bin/python3", "-c", parent, probe, "tids", *NATIVE],
                         capture_output=True, text=True, timeout=TIMEOUT).stdout
    got = results(out)
    assert got["threads"] == "2", out
    assert {a: got.get(a) for a in NATIVE} == dict.fromkeys(NATIVE, "ok"), out


# -- every thread of the supervisor, by its id -------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("who", WHO)
def test_no_route_by_thread_id_reaches_a_supervisor_thread(probe, place, who, mode,  # noqa: F811
                                                           backend):
    """Every thread of the supervisor (receivers, workers, the task watch,
    the writers...), named by its own id: nothing of it reached. yama-run
    judges the thread's process (its tgid) wherever it judges a pid, and the
    gate the process behind /proc/TID and /proc/SUP/task/TID. Left, as
    documented: root inside reads the names behind the links where the chain
    has no contain (readlink is not routed for it)."""
    launcher, inside = who
    contained, env = MODES[mode]
    proc = run(launcher, profile(place, contained), [*inside, probe, "tids", *EVERY], env=env,
               backend=backend)
    got = results(proc.stdout)
    said = proc.stdout + proc.stderr
    assert int(got.get("threads", "0")) >= 2, said       # there were threads to attack
    left = set(LINKS) if not inside and mode == "default" else set()
    assert reached(got, set(EVERY) - left) == {}, said


# -- the short-lived threads that act as the caller ------------------------------------------

@pytest.fixture(params=[0, 1], ids=["suid_dumpable=0", "suid_dumpable=1"])
def suid_dumpable(request, sysctl):
    sysctl("fs.suid_dumpable", request.param)
    return request.param


@pytest.mark.parametrize("who", [WHO[0], WHO[2]])
def test_a_short_lived_thread_of_the_caller_s_ids_is_never_reached(probe, place, who,  # noqa: F811
                                                                   suid_dumpable):
    """pidfd_getfd, perf_event_open, process_madvise and O_ASYNC are made by
    a thread of the supervisor that takes the caller's ids and capability
    sets for one call (csrc/creds.c). For 3 s the program makes such calls in
    four threads while a fifth aims every route at each supervisor thread the
    kernel has just numbered. Found this way (uid 1001 under a yama-run
    started by root, the bundled default profile, fs.suid_dumpable=1): every
    credential change of a supervisor thread makes its memory dumpable again
    (commit_creds sets it to suid_dumpable), and such a thread then held
    exactly the caller's real, effective and saved ids and no capability
    beyond its: readlink of /proc/TID/fd/N, cwd, root, exe, ns/* (not routed
    there) read the names of the supervisor's descriptors, in a few hundred
    of the tries. The thread now keeps the supervisor's saved ids, which no
    ptrace check made on it matches (a caller that is root by its ids aside)."""
    launcher, inside = who
    proc = run(launcher, profile(place, None),
               [*inside, probe, "race", "3", *MAKERS, "--", *RACED])
    got = results(proc.stdout)
    said = proc.stdout + proc.stderr
    assert int(got.get("seen", "0")) >= 20, said          # threads were seen and attacked
    hits = {a: got.get(f"race-{a}") for a in RACED
            if not got.get(f"race-{a}", "missing").startswith("0/")}
    assert hits == {}, said


@pytest.mark.skipif(not _have_ptrace_backend(), reason="needs python-ptrace for --backend ptrace")
def test_pidfd_getfd_from_two_threads_under_the_ptrace_backend(probe, place):  # noqa: F811
    """Two threads of the program each call pidfd_getfd on a pidfd of a child
    of their own, in a loop, for 1 s, while the main thread reads
    /proc/loadavg: under --backend ptrace the run never ended (waitpid(-1)
    always reported the two looping threads first, and the main thread's
    call waited behind them for ever; csrc/tracer.c serves every tracee ready
    at a wait before the next now), where the notify backend ends at once.
    The sandbox is the program's own: a denial of its own service, and of
    every other call of the sandbox meanwhile."""
    try:
        proc = run([], profile(place, None),
                   [probe, "race", "1", "getfd", "getfd", "--", "link-fd"], timeout=20,
                   backend="ptrace")
    except subprocess.TimeoutExpired:
        pytest.fail("the sandbox hung")
    assert proc.returncode == 0 and "seen" in proc.stdout, proc.stdout + proc.stderr


# -- a sibling's thread at scope 1 ----------------------------------------------------------

SIBLING = ["seize", "vmread", "vmwrite", "getfd", "proc-mem", "proc-task-mem",
           "proc-syscall", "perf-sigtrap"]


def test_a_siblings_thread_is_reached_natively(probe):
    out = subprocess.run([*AS_1001, probe, "sibling-thread", *SIBLING], capture_output=True,
                         text=True, timeout=TIMEOUT).stdout
    assert {a: results(out).get(a) for a in SIBLING} == dict.fromkeys(SIBLING, "ok"), out


@pytest.mark.parametrize("who", [WHO[0], WHO[2]])
def test_a_siblings_thread_at_scope_1(probe, place, who):  # noqa: F811
    """A sibling's second thread, named by its own id, is that sibling for
    Yama: ATTACH-mode routes are refused (EPERM; EACCES for mem and a
    perf event with sigtrap; syscall is read as lock_trace: EPERM)."""
    launcher, inside = who
    proc = run(launcher, profile(place, False), [*inside, probe, "sibling-thread", *SIBLING])
    got = results(proc.stdout)
    want = {**dict.fromkeys(SIBLING, "EPERM"), "proc-mem": "EACCES", "proc-task-mem": "EACCES",
            "perf-sigtrap": "EACCES"}
    assert {a: got.get(a) for a in SIBLING} == want, proc.stdout + proc.stderr
