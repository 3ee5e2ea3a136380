"""Parity with the kernel's Yama (issue 14 items 1, 2 and 4).

This kernel has no Yama, so a native run cannot judge the scopes: each test
cites the rule of security/yama/yama_lsm.c it reproduces (line numbers of
the v6.x file: yama_task_prctl 231-248, yama_ptracer_add 156-157,
yama_ptracer_del/yama_task_free 185-203, task_is_descendant 273-282,
ptracer_exception_found 310-329, yama_ptrace_access_check 353-372), and a
native control shows that the kernel's classic rules allow what yama-run is
asked to refuse (so every EPERM seen is yama-run's, and every success would
be the kernel's too).

The scenarios run tests/helpers/ptrace_probe.c (see its header)."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from conftest import public_copy, requires_root, yama_run
from test_ptrace import AS_USER, ACCESS_OPS, native, ok, start_waiter, stop_waiter
from test_ptrace import probe, profile, sandbox, user_yama_run  # noqa: F401  (fixtures, by name)

pytestmark = requires_root

TIMEOUT = 40


@pytest.fixture(scope="session")
def contained(tmp_path_factory):
    path = tmp_path_factory.mktemp("profiles") / "contained.toml"
    path.write_text('chain = ["contain", "ptrace"]\n\n[contain]\nenabled = true\n\n'
                    '[ptrace]\nscope = 1\n')
    return str(path)


# -- 14 item 1: the knob means the kernel's rule for targets outside too -----------------

def test_scope0_attaches_an_unrelated_outsider(sandbox, probe, outside_user):
    """yama_lsm.c:353 (YAMA_SCOPE_DISABLED: "No additional restrictions"):
    uid 1001 attaches to an unrelated uid-1001 process outside the sandbox."""
    out = sandbox(0, probe, "run", f"pid={outside_user}", "attach,seize,vmread,vmwrite,getfd")
    assert out.ops() == {op: "0" for op in ACCESS_OPS}, ok(out)


@pytest.mark.parametrize("scope", [1, 2])
def test_root_cap_sys_ptrace_attaches_outside(sandbox, probe, outside_user, scope):
    """yama_lsm.c:362 (scope 1) and 368 (scope 2): ns_capable(CAP_SYS_PTRACE)
    over the target's user namespace exempts root, inside and outside."""
    out = sandbox(scope, probe, "run", f"pid={outside_user}", "attach,seize,vmread,getfd",
                  as_user=False)
    assert out.ops() == {"ATTACH": "0", "SEIZE": "0", "VMREAD": "0", "GETFD": "0"}, ok(out)


@pytest.mark.parametrize("scope, as_user", [(0, True), (1, False), (2, False)])
def test_contained_refuses_the_same_and_says_so(sandbox, probe, contained, outside_user,
                                                tmp_path, scope, as_user):
    """With containment on, each of the accesses above is refused, audited
    as containment's (not Yama's: the kernel's rule would allow them)."""
    log = tmp_path / "audit.jsonl"
    out = sandbox(scope, probe, "run", f"pid={outside_user}", "attach,seize,vmread,getfd",
                  as_user=as_user, profile_path=contained,
                  options=("-v", "--audit-log", str(log)))
    assert out.ops() == {"ATTACH": "EPERM", "SEIZE": "EPERM", "VMREAD": "EPERM",
                         "GETFD": "EPERM"}, ok(out)
    assert f"contain: denied PTRACE_ATTACH of {outside_user} (yp-outsider)" in out.stderr, ok(out)
    modules = {line.split('"module": "')[1].split('"')[0]
               for line in log.read_text().splitlines()}
    assert modules == {"contain"}, log.read_text()


@pytest.fixture
def outside_user(probe):
    proc = start_waiter(probe, AS_USER)
    yield proc.pid
    stop_waiter(proc)


# -- 14 item 2: PR_SET_PTRACER with the kernel's lifetimes ---------------------------------

def test_declaration_survives_the_leaders_own_exec(sandbox, probe):
    """yama_lsm.c:231 (the relation's tracee is current->group_leader) and
    203 (dropped only when that task is freed): the leader's own execve keeps
    the task, so the declaration stands."""
    out = sandbox(1, probe, "tracee-exec", "leader")
    assert out.results["PRCTL:actor"] == "0", ok(out)
    assert out.ops("actor") == {"ATTACH": "0"}, ok(out)


def test_declaration_dropped_by_another_threads_exec(sandbox, probe):
    """yama_lsm.c:231, 203: a declaration made by a non-leader thread T is
    the leader's; T's execve frees the old leader (de_thread), so
    yama_task_free drops it: a later attach is EPERM (native control: 0)."""
    out = sandbox(1, probe, "tracee-exec", "thread")
    assert out.results["PRCTL:actor"] == "0", ok(out)
    assert int(out.facts["DECLARED_BY"]) != out.pids["target"], ok(out)
    assert out.ops("actor") == {"ATTACH": "EPERM"}, ok(out)


def test_declaration_kept_when_another_threads_exec_fails(sandbox, probe):
    """An execve that fails (ENOENT) frees no task: the declaration made by
    the non-leader thread stands (yama_lsm.c:203 is never reached)."""
    out = sandbox(1, probe, "tracee-exec", "thread", "fail")
    assert out.facts.get("EXEC:fail") == "ENOENT", ok(out)
    assert out.ops("actor") == {"ATTACH": "0"}, ok(out)


def test_tracer_thread_keeps_its_relation_through_its_own_exec(sandbox, probe):
    """yama_lsm.c:241-244 (the relation stores the task named, a thread),
    273-274 (task_is_descendant takes the tracer's group leader at check
    time): T execs, becomes its process's leader under the process's pid,
    and is the same task: its new image may attach (native control: 0)."""
    out = sandbox(1, probe, "tracer-exec", "thread")
    assert out.results["PRCTL:thread"] == "0", ok(out)
    assert int(out.facts["EXECD_PID"]) == out.pids["actor"], ok(out)
    assert out.ops("after-exec") == {"ATTACH": "0"}, ok(out)


def test_tracer_leader_freed_by_a_threads_exec(sandbox, probe):
    """yama_lsm.c:203: the declared tracer is C's leader task; C's thread T
    execs, which frees that task: the relation is gone, and T (now C's
    leader under C's pid) is refused."""
    out = sandbox(1, probe, "tracer-exec", "leader")
    assert out.results["PRCTL:leader"] == "0", ok(out)
    assert int(out.facts["EXECD_PID"]) == out.pids["actor"], ok(out)
    assert out.ops("after-exec") == {"ATTACH": "EPERM"}, ok(out)


@pytest.mark.parametrize("case", [("tracee-exec", "thread"), ("tracer-exec", "thread"),
                                  ("tracer-exec", "leader")])
def test_native_control_exec_scenarios_attach(probe, case):
    out = native(probe, *case)
    attaches = out.ops("actor") or out.ops("after-exec")
    assert attaches == {"ATTACH": "0"}, ok(out)


# -- 14 item 4: every PTRACE_MODE_ATTACH access is Yama's ------------------------------------

@pytest.mark.parametrize("scope, want", [(0, "0"), (1, "EACCES"), (3, "EACCES")])
def test_perf_event_open_with_sigtrap_is_attach_mode(sandbox, probe, scope, want):
    """kernel/events/core.c perf_check_permission: attr.sigtrap upgrades the
    check to PTRACE_MODE_ATTACH_REALCREDS, so Yama (yama_lsm.c:351 "mode &
    PTRACE_MODE_ATTACH", 356-363) refuses a non-descendant sibling at scope
    1 and 3 (EACCES, perf's own errno). Without sigtrap it is READ mode: never
    Yama's. (It killed a sibling with SIGTRAP before.)"""
    out = sandbox(scope, probe, "run", "sibling", "perf,perfsig")
    assert out.ops() == {"PERF": "0", "PERFSIG": want}, ok(out)


def test_perf_event_open_sigtrap_on_a_descendant(sandbox, probe):
    out = sandbox(1, probe, "run", "child", "perfsig")
    assert out.ops() == {"PERFSIG": "0"}, ok(out)


def test_native_control_perf_event_open(probe):
    out = native(probe, "run", "sibling", "perf,perfsig")
    assert out.ops() == {"PERF": "0", "PERFSIG": "0"}, ok(out)


@pytest.mark.parametrize("scope", [1, 3])
def test_read_mode_accesses_stay_allowed(sandbox, probe, scope):
    """kcmp and /proc/PID/environ are PTRACE_MODE_READ: not Yama's (yama_lsm.c:351)."""
    out = sandbox(scope, probe, "run", "sibling", "kcmp,environ")
    assert out.ops() == {"KCMP": "0", "ENVIRON": "0"}, ok(out)


def test_perf_sigtrap_denial_audited(sandbox, probe, tmp_path):
    log = tmp_path / "audit.jsonl"
    out = sandbox(1, probe, "run", "sibling", "perfsig", options=("--audit-log", str(log)))
    assert out.ops() == {"PERFSIG": "EACCES"}, ok(out)
    text = log.read_text()
    assert '"operation": "perf_event_open sigtrap"' in text and '"module": "ptrace"' in text, text


# -- what the kernel answers before Yama, or without asking it ------------------------------

@pytest.fixture(scope="session")
def mm_probe(helper):
    """The probe, and beside it (where every uid can read) a profile with
    the ptrace module alone."""
    exe, where = public_copy(helper("shared_mm_probe"), "shared_mm_probe")
    with open(os.path.join(where, "ptrace-only.toml"), "w") as f:
        f.write('chain = ["ptrace"]\n\n[ptrace]\nscope = 1\n')
    os.chmod(os.path.join(where, "ptrace-only.toml"), 0o644)
    yield exe
    shutil.rmtree(where, ignore_errors=True)


def lines(proc) -> dict:
    """The probe's "NAME result" lines, with the run shown on failure."""
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout}{proc.stderr}"
    return dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)


def in_sandbox(profile, scope, *cmd, fast=True):
    env = {**os.environ, "YAMA_RUN_NO_FAST_PATH": "0" if fast else "1"}
    return lines(yama_run("--profile", profile, "--set", f"ptrace.scope={scope}", "--",
                          *AS_USER, *cmd, timeout=TIMEOUT, env=env))


def natively(*cmd):
    return lines(subprocess.run([*AS_USER, *cmd], capture_output=True, text=True,
                                timeout=TIMEOUT))


SHARED = {f"{op}:{way}": "0" for op in ("VMREAD", "VMWRITE", "PROCMEM") for way in ("up", "down")}


@pytest.mark.parametrize("fast", [True, False], ids=["c", "module"])
@pytest.mark.parametrize("scope", [1, 3])
def test_a_sharer_of_the_callers_memory_is_never_asked(profile, mm_probe, scope, fast):
    """mm_access (kernel/fork.c, for process_vm_readv/writev and
    proc_mem_open) calls ptrace_may_access only when "mm != current->mm": a
    process cloned with CLONE_VM but not CLONE_THREAD (vfork, posix_spawn)
    reads and writes its parent's memory, and the parent its child's, at
    every scope. yama-run refused the child at 1 and both at 3 (EPERM,
    EACCES). Settled in C and by the module alike."""
    assert natively(mm_probe, "sharers") == SHARED
    assert in_sandbox(profile, scope, mm_probe, "sharers", fast=fast) == SHARED


@pytest.mark.parametrize("scope", [1, 3])
def test_a_sharer_of_the_callers_memory_in_a_yama_run_of_uid_1001(mm_probe, user_yama_run,
                                                                 scope):
    """The same under a yama-run started by uid 1001 (the supervisor is the
    sandbox's user namespace's owner, not root)."""
    public_profile = os.path.join(os.path.dirname(mm_probe), "ptrace-only.toml")
    proc = subprocess.run([*user_yama_run, "--profile", public_profile,
                           "--set", f"ptrace.scope={scope}", "--", mm_probe, "sharers"],
                          capture_output=True, text=True, timeout=TIMEOUT, cwd="/")
    assert lines(proc) == SHARED


def test_a_sharer_that_execs_is_judged_again(profile, mm_probe):
    """Once the child has exec'd it has an mm of its own: at scope 3 its
    parent is refused from then on (yama_lsm.c:372), where natively the
    classic rule lets the parent reach the new image (its old address is
    unmapped there: EFAULT, EIO)."""
    before = {"VMREAD:before": "0", "VMWRITE:before": "0", "PROCMEM:before": "0"}
    assert natively(mm_probe, "exec") == {**before, "VMREAD:after": "EFAULT",
                                          "VMWRITE:after": "EFAULT", "PROCMEM:after": "EIO"}
    assert in_sandbox(profile, 3, mm_probe, "exec") == {
        **before, "VMREAD:after": "EPERM", "VMWRITE:after": "EPERM", "PROCMEM:after": "EACCES"}


@pytest.mark.parametrize("scope", [1, 3])
def test_a_non_dumpable_targets_trace_entries_are_refused_by_their_mode(profile, mm_probe,
                                                                       scope):
    """A non-dumpable task's /proc entries are root's: syscall and
    personality 0400, mem 0600. The open's permission check refuses a
    sibling (EACCES) before lock_trace or mm_access would ask Yama; yama-run
    asked the chain first and said EPERM for syscall and personality."""
    want = {"SYSCALL": "EACCES", "PERSONALITY": "EACCES", "PROCMEM": "EACCES"}
    assert natively(mm_probe, "nodump") == want
    assert in_sandbox(profile, scope, mm_probe, "nodump") == want
