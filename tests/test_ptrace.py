"""The ptrace module: Yama's ptrace_scope re-created per sandbox.

Reference: /work/shared/KERNEL-SEMANTICS.md section 1. This kernel has no Yama,
so every restriction seen here comes from yama-run; the native control cases
(no yama-run) show that the kernel's classic rules allow what yama-run denies.

Each case runs tests/helpers/ptrace_probe.c, which performs the operation and
prints one line per result ("ATTACH 0", "SEIZE EPERM", "ATTACH:actor 0"), so
the tests assert the errno a user would see. The sandboxed callers run as uid
1001 (setpriv inside the sandbox) unless a test is about root: root is exempt
at scopes 1 and 2 through CAP_SYS_PTRACE.

Tests marked BUG (strict xfail) show a defect of yama-run; see their reasons.
When the bug is fixed the test XPASSes and fails: remove the marker then.
"""
from __future__ import annotations

import json
import os
import re
import select
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

import pytest

from conftest import YAMA_RUN, public_copy, requires_root, requires_tool, yama_run
from stall_harness import (CALLER_CACHES, IDENTITY_CACHE_FDS, assert_unharmed,
                           attack_with_bystander, stall, starter)  # noqa: F401  (fixtures)
from test_containment import user_yama_run  # noqa: F401  (a fixture)

pytestmark = requires_root

UID = 1001
UID2 = 1002          # a second non-root identity
AS_USER = ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups"]
TIMEOUT = 40

ACCESS_OPS = ("ATTACH", "SEIZE", "VMREAD", "VMWRITE", "GETFD")   # ATTACH-mode: Yama's
ALL_OPS = "attach,seize,vmread,vmwrite,getfd,environ"            # environ: READ mode


def BUG(reason: str):
    return pytest.mark.xfail(reason=f"BUG: {reason}", strict=True)


# -- running the probe ---------------------------------------------------------

@dataclass
class Outcome:
    rc: int
    stdout: str
    stderr: str
    results: dict = field(default_factory=dict)   # "ATTACH" / "ATTACH:actor" -> "0" | "EPERM"
    pids: dict = field(default_factory=dict)      # role -> pid
    facts: dict = field(default_factory=dict)     # other lines: first word -> rest

    def __str__(self):
        return f"rc={self.rc}\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}"

    def ops(self, label: str | None = None) -> dict:
        """The operation results (of one label in the scenarios)."""
        out = {}
        for key, value in self.results.items():
            op, _, lab = key.partition(":")
            if op == "PRCTL":
                continue
            if (label is None and not lab) or lab == label:
                out[op] = value
        return out


RESULT = re.compile(r"^(ATTACH|SEIZE|VMREAD|VMWRITE|GETFD|PROCMEM|ENVIRON|ATTACHHI|ATTACH32HI|SEIZE32HI|SEIZE32ADDR|ATTACH32|PERFSIG|PERF|KCMP|"
                    r"SEIZE32|TRACEME|PRCTL)(:\S+)? (\S+)$")


def parse(proc) -> Outcome:
    out = Outcome(proc.returncode, proc.stdout, proc.stderr)
    for line in proc.stdout.splitlines():
        m = RESULT.match(line)
        if m:
            out.results[m.group(1) + (m.group(2) or "")] = m.group(3)
        elif line.startswith("PID "):
            _, role, pid = line.split()
            out.pids[role] = int(pid)
        elif line.strip():
            word, _, rest = line.partition(" ")
            out.facts[word] = rest
    return out


@pytest.fixture(scope="session")
def probe(helper):
    """The probe, in a directory every uid can reach."""
    # -no-pie: the probed global sits at the same address in every process.
    exe, where = public_copy(helper("ptrace_probe", "-no-pie"), "ptrace_probe")
    yield exe
    shutil.rmtree(where, ignore_errors=True)


@pytest.fixture(scope="session")
def profile(tmp_path_factory):
    """A profile with the ptrace module alone, so that these tests do not
    depend on what else the default profile chains."""
    path = tmp_path_factory.mktemp("profiles") / "ptrace-only.toml"
    path.write_text('chain = ["ptrace"]\n\n[ptrace]\nscope = 1\n')
    return str(path)


@pytest.fixture(scope="session")
def sandbox(profile):
    """sandbox(scope, *cmd, as_user=True, options=()) -> Outcome."""
    def run(scope, *cmd, as_user=True, options=(), profile_path=profile, env=None):
        prefix = ["--profile", profile_path] if profile_path else []
        if scope is not None:
            prefix += ["--set", f"ptrace.scope={scope}"]
        proc = yama_run(*prefix, *options, "--", *(AS_USER if as_user else []), *cmd,
                        timeout=TIMEOUT, env=env)
        return parse(proc)
    return run


# Landlock is used only while the sandbox is contained (tests/test_containment.py);
# the environment that keeps it off stays for the modules that import it.
NO_LANDLOCK = {**os.environ, "YAMA_RUN_NO_LANDLOCK": "1"}


def native(*cmd, as_user=True) -> Outcome:
    proc = subprocess.run([*(AS_USER if as_user else []), *map(str, cmd)],
                          capture_output=True, text=True, timeout=TIMEOUT)
    return parse(proc)


def start_waiter(probe, prefix=()):
    """A probe in `wait` mode started by the test, outside any sandbox."""
    proc = subprocess.Popen([*prefix, probe, "wait"], stdout=subprocess.PIPE, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 10)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("READY "):
        proc.kill()
        proc.wait()
        pytest.fail(f"outsider did not start: {line!r}")
    pid = int(line.split()[1])
    assert pid == proc.pid          # setpriv and unshare exec the probe in place
    return proc


def stop_waiter(proc):
    proc.kill()                     # our own Popen child, by its pid
    proc.wait(timeout=10)
    proc.stdout.close()


@pytest.fixture(scope="module")
def outsider(probe):
    """An unrelated uid-1001 process: classic permissions let uid 1001 trace it."""
    proc = start_waiter(probe, AS_USER)
    yield proc.pid
    stop_waiter(proc)


def ok(out: Outcome) -> str:
    """The assertion message: the probe's whole output (pytest would repr an object)."""
    return str(out)


# -- the scope matrix ------------------------------------------------------------

RELATIONS = ["child", "grandchild", "thread", "parent", "sibling", "unrelated", "orphan"]
DESCENDANTS = {"child", "grandchild", "thread"}


def expected(scope: int, relation: str) -> dict:
    allowed = scope == 0 or (scope == 1 and relation in DESCENDANTS)
    want = {op: "0" if allowed else "EPERM" for op in ACCESS_OPS}
    want["ENVIRON"] = "0"       # READ mode: never Yama's business
    return want


def rel_arg(relation: str, outsider: int) -> str:
    return f"pid={outsider}" if relation == "unrelated" else relation


@pytest.mark.parametrize("relation", RELATIONS)
@pytest.mark.parametrize("scope", [0, 1, 2, 3])
def test_scope_matrix(sandbox, probe, outsider, scope, relation):
    """ATTACH, SEIZE, process_vm_readv/writev and pidfd_getfd by uid 1001 on a
    child, grandchild, non-leader thread of a child, the parent, a sibling, an
    unrelated process and a reparented orphan, at every scope."""
    out = sandbox(scope, probe, "run", rel_arg(relation, outsider), ALL_OPS)
    assert out.rc == 0, ok(out)
    assert out.ops() == expected(scope, relation), ok(out)
    if relation == "orphan":
        # reparented to the subreaper, no longer the actor's descendant
        assert int(out.facts["ORPHAN_PPID"]) not in (out.pids["actor"], 0, -1), ok(out)


@pytest.mark.parametrize("relation", RELATIONS)
def test_native_control_classic_rules_allow(probe, outsider, relation):
    """Without yama-run the same uid-1001 operations all succeed: every denial
    in the matrix is yama-run's doing, and the probe's cases really work."""
    out = native(probe, "run", rel_arg(relation, outsider), ALL_OPS)
    assert out.rc == 0, ok(out)
    assert out.ops() == expected(0, relation), ok(out)


@pytest.mark.parametrize("relation, want", [("child", "0"), ("sibling", "EPERM")])
def test_scope1_caller_is_a_non_leader_thread(sandbox, probe, relation, want):
    """Descendant-ness is decided between processes: a second thread of the
    tracer may attach to a descendant, and is refused a sibling."""
    out = sandbox(1, probe, "run", "-T", relation, "attach,seize,vmread,getfd")
    assert out.rc == 0, ok(out)
    assert "ACTOR_TID" in out.facts, ok(out)
    assert out.ops() == {op: want for op in ("ATTACH", "SEIZE", "VMREAD", "GETFD")}, ok(out)


@pytest.mark.parametrize("relation, want", [("sibling", "EPERM"), ("child", "0")])
def test_scope1_high_pid_bits_and_i386_abi(sandbox, probe, relation, want):
    """The pid is truncated to 32 bits as the kernel does, and ptrace through
    int $0x80 (i386 ABI) is checked as well."""
    out = sandbox(1, probe, "run", relation, "attachhi,attach32,seize32")
    assert out.rc == 0, ok(out)
    assert out.ops() == {"ATTACHHI": want, "ATTACH32": want, "SEIZE32": want}, ok(out)


@pytest.mark.parametrize("backend, relation, want", [
    ("notify", "sibling", "EPERM"), ("notify", "child", "0"),
    ("ptrace", "sibling", "EPERM")])      # (its tracer holds the child: EPERM natively)
def test_i386_registers_are_judged_on_their_low_halves(sandbox, probe, relation, want,
                                                       backend):
    """int $0x80 with junk above bit 31 of every register read: the kernel
    takes the low halves (a clean SEIZE of a sibling), and so does every
    decision (the SEIZE with an addr of 1<<32 was let through for the kernel
    to refuse: the sibling traced and read, at every scope)."""
    out = sandbox(1, probe, "run", relation, "attach32hi,seize32hi,seize32addr",
                  options=("--backend", backend))
    assert out.rc == 0, ok(out)
    assert out.ops() == {"ATTACH32HI": want, "SEIZE32HI": want, "SEIZE32ADDR": want}, ok(out)


def test_native_control_high_pid_bits_and_i386_abi(probe):
    out = native(probe, "run", "sibling",
                 "attachhi,attach32,seize32,attach32hi,seize32hi,seize32addr")
    assert out.ops() == {"ATTACHHI": "0", "ATTACH32": "0", "SEIZE32": "0", "ATTACH32HI": "0",
                         "SEIZE32HI": "0", "SEIZE32ADDR": "0"}, ok(out)


@pytest.mark.parametrize("relation", ["self", "selfthread"])
def test_scope3_own_process_memory_and_fds_still_work(sandbox, probe, relation):
    """The same thread group is allowed before any LSM: process_vm_readv/writev
    and pidfd_getfd on oneself (or one's own other thread) work even at scope 3.
    (PTRACE_ATTACH of one's own thread group is EPERM in the kernel core.)"""
    out = sandbox(3, probe, "run", relation, "vmread,vmwrite,getfd,environ,attach")
    assert out.rc == 0, ok(out)
    assert out.ops() == {"VMREAD": "0", "VMWRITE": "0", "GETFD": "0", "ENVIRON": "0",
                         "ATTACH": "EPERM"}, ok(out)


def test_default_profile_is_scope_1(probe):
    """Without --profile/--set, the default profile gives ptrace_scope 1."""
    sibling = parse(yama_run("--", *AS_USER, probe, "run", "sibling", "attach", timeout=TIMEOUT))
    child = parse(yama_run("--", *AS_USER, probe, "run", "child", "attach", timeout=TIMEOUT))
    assert sibling.ops() == {"ATTACH": "EPERM"}, ok(sibling)
    assert child.ops() == {"ATTACH": "0"}, ok(child)


# -- CAP_SYS_PTRACE ------------------------------------------------------------------

@pytest.mark.parametrize("scope, want", [(1, "0"), (2, "0"), (3, "EPERM")])
def test_root_against_another_uid(sandbox, probe, outsider, scope, want):
    """Root (CAP_SYS_PTRACE) may attach to an unrelated uid-1001 process at
    scopes 1 and 2; scope 3 denies even root."""
    out = sandbox(scope, probe, "run", f"pid={outsider}", "attach,seize,vmread,vmwrite,getfd",
                  as_user=False)
    assert out.rc == 0, ok(out)
    assert out.ops() == {op: want for op in ACCESS_OPS}, ok(out)


def test_native_control_root_attaches_another_uid(probe, outsider):
    out = native(probe, "run", f"pid={outsider}", "attach,seize,vmread,vmwrite,getfd",
                 as_user=False)
    assert out.ops() == {op: "0" for op in ACCESS_OPS}, ok(out)


AMBIENT_PTRACE = [*AS_USER, "--inh-caps=+sys_ptrace", "--ambient-caps=+sys_ptrace"]
ROOT_WITHOUT_PTRACE = ["setpriv", "--inh-caps=-sys_ptrace", "--bounding-set=-sys_ptrace"]


@pytest.mark.parametrize("scope, want", [(1, "0"), (2, "0"), (3, "EPERM")])
def test_capability_not_uid_decides(sandbox, probe, outsider, scope, want):
    """uid 1001 holding CAP_SYS_PTRACE (ambient) is exempt at 1 and 2 like root."""
    out = sandbox(scope, *AMBIENT_PTRACE, probe, "run", f"pid={outsider}", "attach,vmread",
                  as_user=False)
    assert out.rc == 0, ok(out)
    assert out.ops() == {"ATTACH": want, "VMREAD": want}, ok(out)


@pytest.mark.parametrize("scope, want", [(1, "0"), (2, "EPERM")])
def test_root_without_cap_sys_ptrace(sandbox, probe, scope, want):
    """uid 0 without CAP_SYS_PTRACE is not exempt: at scope 2 it cannot even
    attach to its own child; at scope 1 the child is a descendant."""
    out = sandbox(scope, *ROOT_WITHOUT_PTRACE, probe, "run", "child", "attach,vmread",
                  as_user=False)
    assert out.rc == 0, ok(out)
    assert out.ops() == {"ATTACH": want, "VMREAD": want}, ok(out)


def test_native_control_root_without_cap_attaches_child(probe):
    out = native(*ROOT_WITHOUT_PTRACE, probe, "run", "child", "attach,vmread", as_user=False)
    assert out.ops() == {"ATTACH": "0", "VMREAD": "0"}, ok(out)


@pytest.fixture
def userns_outsider(probe):
    """An unrelated process of uid 1001 inside its own user namespace."""
    proc = start_waiter(probe, [*AS_USER, "unshare", "--user", "--map-root-user"])
    yield proc.pid
    stop_waiter(proc)


@pytest.mark.parametrize("scope", [1, 2])
def test_root_against_process_in_child_user_namespace(sandbox, probe, userns_outsider, scope):
    out = sandbox(scope, probe, "run", f"pid={userns_outsider}", "attach,vmread",
                  as_user=False)
    assert out.ops() == {"ATTACH": "0", "VMREAD": "0"}, ok(out)


def test_native_control_root_attaches_process_in_child_user_namespace(probe, userns_outsider):
    out = native(probe, "run", f"pid={userns_outsider}", "attach,vmread", as_user=False)
    assert out.ops() == {"ATTACH": "0", "VMREAD": "0"}, ok(out)


@pytest.mark.parametrize("scope", [1, 2])
def test_user_namespace_owner_is_capable(sandbox, probe, userns_outsider, scope):
    out = sandbox(scope, probe, "run", f"pid={userns_outsider}", "attach,vmread")
    assert out.ops() == {"ATTACH": "0", "VMREAD": "0"}, ok(out)


def test_native_control_user_namespace_owner_is_capable(probe, userns_outsider):
    """Natively this attach passes commoncap's ns_capable(target userns,
    CAP_SYS_PTRACE) -- the very check Yama makes at scopes 1 and 2 -- though
    uid 1001 holds no capability: it owns the target's user namespace."""
    out = native(probe, "run", f"pid={userns_outsider}", "attach,vmread")
    assert out.ops() == {"ATTACH": "0", "VMREAD": "0"}, ok(out)


# -- PTRACE_TRACEME -----------------------------------------------------------------

def traceme_ok(out: Outcome) -> bool:
    """TRACEME succeeded and the parent really became the tracer."""
    return (out.results.get("TRACEME") == "0" and out.facts.get("TRACEE_STOPPED") == "SIGSTOP"
            and "TRACEME_CONTINUED" in out.results | out.facts)


@pytest.mark.parametrize("scope, want", [(0, "0"), (1, "0"), (2, "EPERM"), (3, "EPERM")])
def test_traceme_unprivileged_parent(sandbox, probe, scope, want):
    """Scopes 0 and 1 allow TRACEME; 2 needs the parent's CAP_SYS_PTRACE
    (uid 1001 has none); 3 denies."""
    out = sandbox(scope, probe, "traceme")
    assert out.rc == 0, ok(out)
    assert out.results["TRACEME"] == want, ok(out)
    if want == "0":
        assert traceme_ok(out), ok(out)


@pytest.mark.parametrize("scope, want", [(1, "0"), (2, "0"), (3, "EPERM")])
def test_traceme_privileged_parent(sandbox, probe, scope, want):
    """At scope 2 what counts is the *parent's* capability: a uid-1001 child of
    a root parent may call TRACEME. Scope 3 denies it anyway."""
    out = sandbox(scope, probe, "traceme", "-u", UID, as_user=False)
    assert out.rc == 0, ok(out)
    assert out.results["TRACEME"] == want, ok(out)
    if want == "0":
        assert traceme_ok(out), ok(out)


def test_native_control_traceme(probe):
    out = native(probe, "traceme")
    assert traceme_ok(out), ok(out)


@pytest.fixture(scope="session")
def own_calls(helper):
    """tests/helpers/own_calls_probe.c, where every uid may run it."""
    exe, where = public_copy(helper("own_calls_probe"), "own_calls_probe")
    yield exe
    shutil.rmtree(where, ignore_errors=True)


def lines(out: Outcome) -> dict:
    """own_calls_probe's "NAME RESULT" lines."""
    return dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)


@pytest.mark.parametrize("as_user", [True, False], ids=["parent-1001", "parent-root"])
def test_traceme_at_scope_2_counts_the_parents_capability_over_the_callers_namespace(
        sandbox, own_calls, as_user):
    """yama_ptrace_traceme at scope 2 asks has_ns_capability(parent,
    current_user_ns(), CAP_SYS_PTRACE): a child that entered a user namespace
    of its own is traced by a uid-1001 parent, the owner of that namespace,
    and by a root parent, capable in an ancestor of it (cap_capable's walk).
    It was refused for both (the parent's namespace had to be the child's).
    Natively (the classic rule) the same is allowed."""
    assert lines(native(own_calls, "traceme-userns", as_user=as_user)) == {"TRACEME": "0"}
    out = sandbox(2, own_calls, "traceme-userns", as_user=as_user)
    assert lines(out) == {"TRACEME": "0"}, ok(out)


def test_traceme_at_scope_2_still_needs_the_capability_in_the_callers_namespace(
        sandbox, own_calls):
    """The other side of the walk: without a namespace of its own, the child
    of a uid-1001 parent (no capability in the child's namespace) is refused."""
    out = sandbox(2, own_calls, "traceme-plain")
    assert lines(out) == {"TRACEME": "EPERM"}, ok(out)


def test_traceme_at_scope_2_judges_the_thread_that_forked(sandbox, own_calls):
    """The tracer PTRACE_TRACEME makes is current->parent, the thread that
    forked the child, and capset acts per thread: a root parent whose forking
    thread dropped CAP_SYS_PTRACE is refused at scope 2 (Yama reads that
    thread's credentials). yama-run read the leader's, which kept it, and
    allowed it. Natively (no Yama) the classic rule allows it."""
    assert lines(native(own_calls, "traceme-thread-drop", as_user=False)) == {"TRACEME": "0"}
    out = sandbox(2, own_calls, "traceme-thread-drop", as_user=False)
    assert lines(out) == {"TRACEME": "EPERM"}, ok(out)
    out = sandbox(2, own_calls, "traceme-plain", as_user=False)
    assert lines(out) == {"TRACEME": "0"}, ok(out)


@pytest.mark.parametrize("scope", [1, 2, 3])
def test_process_vm_of_a_task_without_memory_is_esrch(sandbox, own_calls, scope):
    """process_vm_readv/writev of a zombie sibling or of kthreadd: mm_access
    finds no mm and the kernel answers ESRCH before any permission check,
    Yama's included (it was EPERM, "not a descendant"), as natively."""
    want = {"VMREAD-ZOMBIE": "ESRCH", "VMWRITE-ZOMBIE": "ESRCH", "VMREAD-KTHREAD": "ESRCH"}
    assert lines(native(own_calls, "vm-no-mm")) == want
    out = sandbox(scope, own_calls, "vm-no-mm")
    assert lines(out) == want, ok(out)


@pytest.mark.parametrize("scope", [1, 2, 3])
def test_process_vm_of_a_task_without_memory_is_esrch_once_denials_go_unread(
        sandbox, own_calls, scope):
    """The same past the first denial, where the ptrace module's denials
    nobody reads are settled in C (csrc/ptrace_fast.c): that rule too lets
    the kernel's ESRCH come first (it answered EPERM)."""
    want = {"NO-MM-ESRCH": "2000", "NO-MM-OTHER": "0"}
    assert lines(native(own_calls, "vm-no-mm-after-denials")) == want
    out = sandbox(scope, own_calls, "vm-no-mm-after-denials")
    assert lines(out) == want, ok(out)


# -- PR_SET_PTRACER -------------------------------------------------------------------

# (steps run by the target A, prctl results, ATTACH by B "actor", by C "other")
PTRACER_CASES = {
    "none":            ([], {}, "EPERM", "EPERM"),
    "pid":             (["actor"], {"actor": "0"}, "0", "EPERM"),
    "any":             (["any"], {"any": "0"}, "0", "0"),
    "any-as-int":      (["any32"], {"any32": "0"}, "0", "0"),
    "clear-any":       (["any", "clear"], {"any": "0", "clear": "0"}, "EPERM", "EPERM"),
    "clear-nothing":   (["clear"], {"clear": "0"}, "EPERM", "EPERM"),
    "replace-to-B":    (["other", "actor"], {"other": "0", "actor": "0"}, "0", "EPERM"),
    "replace-to-C":    (["actor", "other"], {"actor": "0", "other": "0"}, "EPERM", "0"),
    "unknown-pid":     (["bogus"], {"bogus": "EINVAL"}, "EPERM", "EPERM"),
    "unknown-keeps":   (["actor", "bogus"], {"actor": "0", "bogus": "EINVAL"}, "0", "EPERM"),
    "option-hi-bits":  (["actor-hi"], {"actor-hi": "0"}, "0", "EPERM"),
}


@pytest.mark.parametrize("case", list(PTRACER_CASES))
def test_set_ptracer_scope1(sandbox, probe, case):
    """Siblings B and C try to attach to A after A's PR_SET_PTRACER calls."""
    steps, prctl, actor, other = PTRACER_CASES[case]
    out = sandbox(1, probe, "ptracer", *steps)
    assert out.rc == 0, ok(out)
    assert {k.split(":", 1)[1]: v for k, v in out.results.items()
            if k.startswith("PRCTL:")} == prctl, ok(out)
    assert out.ops("actor") == {"ATTACH": actor}, ok(out)
    assert out.ops("other") == {"ATTACH": other}, ok(out)


def test_set_ptracer_grants_every_access_op(sandbox, probe):
    out = sandbox(1, probe, "ptracer", "-o", "attach,seize,vmread,vmwrite,getfd", "actor")
    assert out.rc == 0, ok(out)
    assert out.ops("actor") == {op: "0" for op in ACCESS_OPS}, ok(out)
    assert out.ops("other") == {op: "EPERM" for op in ACCESS_OPS}, ok(out)


@pytest.mark.parametrize("target_uid, want", [(UID, "0"), (UID2, "EPERM")])
def test_exception_does_not_override_classic_rules(sandbox, probe, target_uid, want):
    """Yama only adds denials: A (uid target_uid) declares ANY, and uid-1001
    siblings still need the classic uid match. In particular the emulated
    pidfd_getfd must be performed with the caller's credentials, not root's."""
    out = sandbox(1, probe, "ptracer", "-o", "attach,vmread,getfd", "-u", UID,
                  "-U", target_uid, "any", as_user=False)
    assert out.rc == 0, ok(out)
    assert out.results["PRCTL:any"] == "0", ok(out)
    for label in ("actor", "other"):
        assert out.ops(label) == {"ATTACH": want, "VMREAD": want, "GETFD": want}, ok(out)


def test_set_ptracer_from_non_leader_thread(sandbox, probe):
    """A declaration made by a second thread applies to the whole process and
    survives that thread's exit (it is the leader's relation)."""
    out = sandbox(1, probe, "ptracer", "-t", "actor")
    assert out.rc == 0, ok(out)
    assert out.results["PRCTL:actor"] == "0", ok(out)
    assert int(out.facts["DECLARED_BY"]) != out.pids["target"], ok(out)
    assert out.ops("actor") == {"ATTACH": "0"}, ok(out)
    assert out.ops("other") == {"ATTACH": "EPERM"}, ok(out)


@pytest.mark.parametrize("scope, actor", [(0, "0"), (2, "EPERM"), (3, "EPERM")])
def test_set_ptracer_other_scopes(sandbox, probe, scope, actor):
    """PR_SET_PTRACER answers 0 at every scope, but grants nothing at 2 and 3
    (and is not needed at 0)."""
    out = sandbox(scope, probe, "ptracer", "actor")
    assert out.rc == 0, ok(out)
    assert out.results["PRCTL:actor"] == "0", ok(out)
    assert out.ops("actor") == {"ATTACH": actor}, ok(out)
    assert out.ops("other") == {"ATTACH": "0" if scope == 0 else "EPERM"}, ok(out)


def test_native_control_set_ptracer_is_einval_without_yama(probe):
    """The kernel here has no Yama: PR_SET_PTRACER is EINVAL natively, so the 0
    seen in the sandbox is yama-run's emulation."""
    out = native(probe, "ptracer", "actor")
    assert out.results["PRCTL:actor"] == "EINVAL", ok(out)
    assert out.ops("actor") == {"ATTACH": "0"} and out.ops("other") == {"ATTACH": "0"}, ok(out)


def test_set_ptracer_thread_tracer_dropped_when_thread_exits(sandbox, probe):
    """A declared tracer may be a non-leader thread T of C: while T lives any
    thread of C may attach; once T has exited the relation is gone."""
    out = sandbox(1, probe, "tracer-thread")
    assert out.rc == 0, ok(out)
    assert out.results["PRCTL:thread"] == "0", ok(out)
    assert out.ops("thread-alive") == {"ATTACH": "0"}, ok(out)
    assert out.ops("thread-exited") == {"ATTACH": "EPERM"}, ok(out)


def test_set_ptracer_dropped_when_tracer_exits_pid_reuse(sandbox, probe):
    """A declares C; C can attach. C exits and is reaped; a new process N is
    created with C's pid (clone3 set_tid, hence root; all actors drop to uid
    1001). N must not inherit C's exception."""
    out = sandbox(1, probe, "reuse", "-u", UID, as_user=False)
    assert out.rc == 0, ok(out)
    assert out.results["PRCTL:declared"] == "0", ok(out)
    assert out.ops("declared") == {"ATTACH": "0"}, ok(out)
    if out.facts.get("REUSE") == "EEXIST":
        pytest.skip("another process took the freed pid first")
    assert out.facts.get("REUSE") == "0", ok(out)
    assert out.pids["reused"] == out.pids["declared"], ok(out)
    assert out.ops("reused") == {"ATTACH": "EPERM"}, ok(out)


def test_tracer_keeps_access_to_its_tracee(sandbox, probe):
    """B seizes A thanks to A's declaration; A then clears it. B, still A's
    ptrace parent, may read A's memory (Yama's ptracer_exception_found);
    after detaching it may not."""
    out = sandbox(1, probe, "tracee-vm")
    assert out.rc == 0, ok(out)
    assert out.results["PRCTL:actor"] == "0", ok(out)
    assert out.results["SEIZE"] == "0", ok(out)
    assert out.results["PRCTL:clear"] == "0", ok(out)
    assert out.results["VMREAD:traced"] == "0", ok(out)
    assert out.results["VMREAD:detached"] == "EPERM", ok(out)


def test_set_ptracer_unknown_pid_is_quiet(sandbox, probe):
    out = sandbox(1, probe, "ptracer", "bogus")
    assert out.results["PRCTL:bogus"] == "EINVAL", ok(out)
    assert "Traceback" not in out.stderr and "Exception ignored" not in out.stderr, ok(out)


# -- real debuggers ---------------------------------------------------------------------

@requires_tool("strace")
def test_strace_follow_forks_inside_sandbox(sandbox):
    out = sandbox(1, "strace", "-f", "-e", "trace=execve", "--",
                  "sh", "-c", "/bin/true; echo traced-ok")
    assert out.rc == 0, ok(out)
    assert "traced-ok" in out.stdout, ok(out)
    assert re.search(r"\[pid +\d+\] execve\(\"/bin/true\"", out.stderr), ok(out)


@requires_tool("gdb")
def test_gdb_runs_a_child_inside_sandbox(sandbox):
    out = sandbox(1, "env", "HOME=/tmp", "gdb", "-nx", "-batch", "-ex", "run",
                  "--args", "/bin/sh", "-c", "echo from-gdb; exit 3")
    assert out.rc == 0, ok(out)
    assert "from-gdb" in out.stdout, ok(out)
    assert re.search(r"\[Inferior 1 \(process \d+\) exited with code 03\]", out.stdout), ok(out)


@requires_tool("strace")
def test_strace_p_outside_process_denied(sandbox, outsider):
    out = sandbox(1, "strace", "-p", outsider, options=("-v",))
    assert out.rc != 0, ok(out)
    assert "Operation not permitted" in out.stderr, ok(out)
    assert re.search(rf"yama-run: ptrace: denied PTRACE_(SEIZE|ATTACH) of {outsider} "
                     rf"\(yp-outsider\) by \d+ \(strace\): not a descendant", out.stderr), ok(out)


def tracer_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    return 0


@requires_tool("strace")
def test_native_control_strace_p_works(probe):
    target = start_waiter(probe, AS_USER)
    tracer = subprocess.Popen([*AS_USER, "strace", "-p", str(target.pid)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while tracer_of(target.pid) != tracer.pid and time.monotonic() < deadline:
            assert tracer.poll() is None, tracer.stderr.read()
            time.sleep(0.02)
        assert tracer_of(target.pid) == tracer.pid
    finally:
        tracer.terminate()          # strace detaches on SIGTERM
        try:
            tracer.wait(timeout=10)
        except subprocess.TimeoutExpired:
            tracer.kill()
            tracer.wait()
        tracer.stderr.close()
        stop_waiter(target)


# -- audit, -v, permissive ----------------------------------------------------------------

def audit_records(path) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_denial_audit_log_and_verbose_line(sandbox, probe, tmp_path):
    log = tmp_path / "audit.jsonl"
    out = sandbox(1, probe, "run", "sibling", "attach,vmread,getfd",
                  options=("--audit-log", log, "-v"))
    assert out.rc == 0, ok(out)
    assert out.ops() == {"ATTACH": "EPERM", "VMREAD": "EPERM", "GETFD": "EPERM"}, ok(out)
    actor, target = out.pids["actor"], out.pids["target"]
    records = audit_records(log)
    by_syscall = {r["syscall"]: r for r in records}
    assert set(by_syscall) == {"ptrace", "process_vm_readv", "pidfd_getfd"}, records
    for rec in records:
        assert rec["module"] == "ptrace", rec
        assert rec["action"] == "deny", rec
        assert rec["pid"] == actor and rec["tid"] == actor, rec
        assert rec["errno"] == "EPERM", rec
        assert rec["reason"] == "not a descendant", rec
        assert rec["target"] == target, rec
    assert by_syscall["ptrace"]["operation"] == "PTRACE_ATTACH"
    line = (f"yama-run: ptrace: denied PTRACE_ATTACH of {target} (yp-target) "
            f"by {actor} (yp-actor): not a descendant")
    assert line in out.stderr.splitlines(), ok(out)
    assert (f"yama-run: ptrace: denied process_vm_readv of {target} (yp-target) "
            f"by {actor} (yp-actor): not a descendant") in out.stderr.splitlines(), ok(out)


def test_denial_audit_from_thread_names_process_and_thread(sandbox, probe, tmp_path):
    log = tmp_path / "audit.jsonl"
    out = sandbox(1, probe, "run", "-T", "sibling", "attach", options=("--audit-log", log))
    assert out.ops() == {"ATTACH": "EPERM"}, ok(out)
    [rec] = audit_records(log)
    assert rec["pid"] == out.pids["actor"], rec
    assert rec["tid"] == int(out.facts["ACTOR_TID"]) != rec["pid"], rec


def test_traceme_denial_audited(sandbox, probe, tmp_path):
    log = tmp_path / "audit.jsonl"
    out = sandbox(3, probe, "traceme", options=("--audit-log", log, "-v"))
    assert out.results["TRACEME"] == "EPERM", ok(out)
    [rec] = audit_records(log)
    assert (rec["module"], rec["syscall"], rec["errno"]) == ("ptrace", "ptrace", "EPERM"), rec
    assert rec["operation"] == "PTRACE_TRACEME" and rec["reason"], rec
    assert rec["target"] == out.pids["parent"], rec
    assert re.search(rf"yama-run: ptrace: denied PTRACE_TRACEME to {out.pids['parent']} "
                     r"\(yp-probe\) by \d+ \(yp-tracee\): ", out.stderr), ok(out)


def test_allowed_access_is_not_audited(sandbox, probe, tmp_path):
    log = tmp_path / "audit.jsonl"
    out = sandbox(1, probe, "run", "child", "attach,seize,vmread,vmwrite,getfd",
                  options=("--audit-log", log, "-v"))
    assert out.ops() == {op: "0" for op in ACCESS_OPS}, ok(out)
    assert audit_records(log) == []
    assert "denied" not in out.stderr, ok(out)


def test_permissive_records_would_deny_and_allows(sandbox, probe, tmp_path):
    log = tmp_path / "audit.jsonl"
    out = sandbox(1, probe, "run", "sibling", "attach,vmread,getfd",
                  options=("--permissive", "--audit-log", log, "-v"))
    assert out.rc == 0, ok(out)
    assert out.ops() == {"ATTACH": "0", "VMREAD": "0", "GETFD": "0"}, ok(out)
    records = audit_records(log)
    assert sorted(r["syscall"] for r in records) == ["pidfd_getfd", "process_vm_readv", "ptrace"]
    for rec in records:
        assert rec["action"] == "would-deny", rec
        assert (rec["module"], rec["errno"], rec["reason"]) == ("ptrace", "EPERM",
                                                                 "not a descendant"), rec
    assert (f"yama-run: ptrace: would deny PTRACE_ATTACH of {out.pids['target']} (yp-target) "
            f"by {out.pids['actor']} (yp-actor): not a descendant") in out.stderr, ok(out)


# -- nesting: the scope cannot be lowered from inside -------------------------------------

def test_nested_yama_run_cannot_lower_scope(sandbox, probe, profile):
    """An inner `yama-run --backend notify --set ptrace.scope=0` cannot install a
    second user-notify listener: it fails to start (125), and the attach stays
    denied. (With the default --backend auto it runs traced instead: see
    test_backend_ptrace.py.)"""
    attempt = [*AS_USER, probe, "run", "sibling", "attach"]
    inner = [*YAMA_RUN, "--backend", "notify", "--profile", profile, "--set", "ptrace.scope=0",
             "--", *attempt]
    script = f"{shlex.join(inner)}; echo INNER_STATUS $?; {shlex.join(attempt)}"
    out = sandbox(1, "sh", "-c", script, as_user=False)
    assert out.rc == 0, ok(out)
    assert out.facts.get("INNER_STATUS") == "125", ok(out)
    assert "cannot install the seccomp filter" in out.stderr, ok(out)
    # one ATTACH line only (the inner probe never ran), and it was denied
    assert out.stdout.count("ATTACH ") == 1, ok(out)
    assert out.ops() == {"ATTACH": "EPERM"}, ok(out)


# -- bugs found (the fixed ones stay as regression tests) ----------------------------------

@pytest.mark.parametrize("scope", [1, 3])
def test_proc_pid_mem_open_denied(sandbox, probe, scope):
    out = sandbox(scope, probe, "run", "sibling", "procmem,vmread")
    assert out.results["VMREAD"] == "EPERM", ok(out)      # passes: the syscall route works
    assert out.results["PROCMEM"] == "EACCES", ok(out)


def test_native_control_proc_pid_mem(probe):
    out = native(probe, "run", "sibling", "procmem")
    assert out.results["PROCMEM"] == "0", ok(out)


@pytest.mark.parametrize("scope", [0, 1, 2])
def test_sandbox_cannot_trace_its_supervisor(sandbox, probe, scope):
    """DESIGN.md principle 5: root in the sandbox passes the CAP_SYS_PTRACE
    exemption, but must still not attach to (or take fds from) yama-run itself,
    the sandboxed program's parent. (fd 100 does not exist in the supervisor:
    an allowed pidfd_getfd would say EBADF.)"""
    out = sandbox(scope, probe, "run", "ppid", "attach,seize,getfd", as_user=False)
    assert out.ops() == {"ATTACH": "EPERM", "SEIZE": "EPERM", "GETFD": "EPERM"}, ok(out)


PIDNS_ALIAS = ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--kill-child"]


def _pidns_alias(sandbox, probe):
    """uid 1001 in its own user+pid namespace, all capabilities dropped.
    B's child D has pid d_here in the namespace and d_outer outside; B's sibling
    A is given pid d_outer inside the namespace."""
    out = sandbox(1, *PIDNS_ALIAS, probe, "pidns-alias", "-u", "nocaps")
    assert out.rc == 0 and out.facts.get("ALIAS") == "0", ok(out)
    return out


def test_pid_namespace_alias_cannot_reach_sibling(sandbox, probe):
    """Pids are the caller's: the number that names the caller's own child in
    the supervisor's namespace names a sibling in the caller's, and the
    sibling is not a descendant."""
    out = _pidns_alias(sandbox, probe)
    assert out.ops("alias") == {"ATTACH": "EPERM"}, ok(out)


def test_pid_namespace_own_child_allowed(sandbox, probe):
    """The caller's child, named by its pid in the caller's namespace."""
    out = _pidns_alias(sandbox, probe)
    assert out.ops("own-child") == {"ATTACH": "0"}, ok(out)


def test_pid_namespace_self_alias_process_vm(sandbox, probe):
    out = _pidns_alias(sandbox, probe)
    b_here, b_outer = map(int, out.facts["ACTOR_PIDS"].split())
    assert out.pids["target2"] == b_outer != b_here, ok(out)
    assert out.ops("self-alias") == {"VMREAD": "EPERM", "VMWRITE": "EPERM",
                                     "ATTACH": "EPERM"}, ok(out)


def test_native_control_pid_namespace_alias(probe):
    """Natively (classic rules) both attaches work: the alias really is a
    different process from the child."""
    out = native(*PIDNS_ALIAS, probe, "pidns-alias", "-u", "nocaps")
    assert out.facts.get("ALIAS") == "0", ok(out)
    here, outer = map(int, out.facts["CHILD_PIDS"].split())
    assert here != outer and out.pids["target"] == outer, ok(out)
    assert out.ops("own-child") == {"ATTACH": "0"} and out.ops("alias") == {"ATTACH": "0"}, ok(out)
    assert out.ops("self-alias") == {"VMREAD": "0", "VMWRITE": "0", "ATTACH": "0"}, ok(out)


# -- against a hostile program: borrowed authority, stalls, exhaustion ---------------------

DAC_OVERRIDE_USER = [*AS_USER, "--inh-caps=+dac_override", "--ambient-caps=+dac_override"]


@pytest.mark.parametrize("victim_caps, want", [(True, "EPERM"), (False, "0")])
def test_pidfd_getfd_never_lends_the_supervisors_capabilities(sandbox, probe, victim_caps, want):
    """Issue 12 item 4: a uid-1001 sibling holding CAP_DAC_OVERRIDE declared
    PR_SET_PTRACER_ANY (so Yama allows at scope 1); the kernel's own rule
    (cap_ptrace_access_check: the target's permitted set within the
    caller's) refuses a uid-1001 caller without it. pidfd_getfd is made
    with exactly the caller's authority, never the supervisor's."""
    victim = " ".join([*(DAC_OVERRIDE_USER if victim_caps else AS_USER), probe, "wait-any"])
    script = (f"{victim} > /dev/null & sleep 0.3; "
              f"{' '.join(AS_USER)} {probe} run pid=$! getfd; kill $!")
    out = sandbox(1, "sh", "-c", script, as_user=False)
    assert out.ops() == {"GETFD": want}, ok(out)


@pytest.mark.parametrize("victim_caps, want", [(True, "EPERM"), (False, "0")])
def test_native_control_pidfd_getfd_capability_subset(probe, victim_caps, want):
    victim = start_waiter(probe, DAC_OVERRIDE_USER if victim_caps else AS_USER)
    try:
        out = native(probe, "run", f"pid={victim.pid}", "getfd")
        assert out.ops() == {"GETFD": want}, ok(out)
    finally:
        stop_waiter(victim)


def test_pidfd_getfd_of_a_capable_outsider_refused(sandbox, probe):
    """The same outside the sandbox, not contained, at scope 0 (no Yama
    rule at all): only the kernel's capability rule stands, and holds."""
    victim = start_waiter(probe, DAC_OVERRIDE_USER)
    try:
        out = sandbox(0, probe, "run", f"pid={victim.pid}", "getfd")
        assert out.ops() == {"GETFD": "EPERM"}, ok(out)
    finally:
        stop_waiter(victim)


@pytest.fixture(scope="session")
def open_profile():
    """ptrace scope 1 alone, in a directory every uid can read."""
    where = tempfile.mkdtemp(prefix="yama-run-stall-profile-")
    os.chmod(where, 0o755)
    path = os.path.join(where, "ptrace.toml")
    with open(path, "w") as f:
        f.write('chain = ["ptrace"]\n\n[ptrace]\nscope = 1\n')
    os.chmod(path, 0o644)
    yield path
    shutil.rmtree(where, ignore_errors=True)


TASK_WATCH_FDS = 4096       # the task watch's bound on declarations' descriptors (docs/ptrace.md)

ATTACKERS = {
    "root": ([], "unshare --pid --fork"),
    "uid1001": (AS_USER, "unshare --user --map-root-user --pid --fork"),
}


@pytest.mark.parametrize("starter", ["root", "uid1001"], indirect=True)
@pytest.mark.parametrize("inside", list(ATTACKERS))
def test_15000_threads_in_a_foreign_pid_namespace(stall, open_profile, starter, inside):
    """Issue 13 item 3: a caller in its own pid namespace with 15,000 idle
    threads makes ptrace and PR_SET_PTRACER calls naming its own threads.
    Each used to scan every task's /proc status (168 ms each; a bystander
    waited up to 7 s); now one ioctl translates the pid."""
    if starter is not None and inside == "root":
        pytest.skip("an unprivileged yama-run has no root inside")
    prefix, unshare = ATTACKERS[inside]
    r = attack_with_bystander(stall, f"{unshare} {stall} threads 15000 3", starter=starter,
                              prefix=() if starter else prefix, profile=open_profile)
    assert r["attack"].get("THREADS") == "15000" and "CALLS" in r["attack"], r
    assert_unharmed(r)


@pytest.mark.parametrize("starter", ["root", "uid1001"], indirect=True)
def test_10000_ptracer_declarations_are_bounded(stall, open_profile, starter):
    """Issue 13 item 4: 10,000 live processes each declare PR_SET_PTRACER.
    The sandbox holds a bounded number of tasks for declarations (two
    descriptors each at most); beyond, the declaration fails with ENOMEM for
    that caller only; the bystander is never held up a second; everything is
    released the moment the declarers exit (no sweep); the supervisor still
    answers afterwards, and nothing reaches the terminal."""
    prefix = [] if starter is not None else AS_USER
    r = attack_with_bystander(stall, f"{stall} declare 10000", starter=starter, prefix=prefix,
                              profile=open_profile)
    ok_, nomem, other = map(int, r["attack"]["DECLARED"].split())
    assert ok_ + nomem == 10000 and other == 0 and ok_ >= 32, r
    assert r["attack"]["AFTER"] == "0", r
    assert r["peak"][1] <= r["before"][1] + TASK_WATCH_FDS + IDENTITY_CACHE_FDS + CALLER_CACHES, r
    assert_unharmed(r)
    assert "error" not in r["stderr"], r["stderr"]


def test_redeclaring_keeps_one_relation(stall, open_profile):
    """10,000 declarations from one process: each replaces the last and
    releases what it held (one relation, whatever the count)."""
    r = attack_with_bystander(stall, f"{stall} redeclare 10000", prefix=AS_USER,
                              profile=open_profile)
    assert r["attack"]["REDECLARED"] == "10000 0", r
    assert r["peak"][1] <= r["before"][1] + CALLER_CACHES + 2, r   # one relation: 2 descriptors
    assert_unharmed(r)
