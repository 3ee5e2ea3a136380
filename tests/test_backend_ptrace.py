"""The ptrace backend (--backend ptrace, and --backend auto's fallback).

The module cases of test_ptrace.py and test_hardlinks.py run here against the
ptrace backend (the whole files also run that way with
YAMA_RUN_TEST_BACKEND=ptrace). What differs is the backend's stated limit: the
supervisor is every sandboxed task's tracer, so an attach the module allows
still gets EPERM, from the kernel; such a refusal is not audited, which is
how these tests tell it from a module's denial. Then what a program must not
notice (signals, group-stops, exit statuses, fork, exec, threads), nesting
under a notify supervisor, and the limit itself."""
from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings

import pytest

from as_user import as_user  # noqa: F401  (fixture)
from conftest import YAMA_RUN, requires_root, requires_tool, tree_env, yama_run

try:
    with warnings.catch_warnings():       # python-ptrace warns on import under 3.12+
        warnings.simplefilter("ignore")
        import ptrace.binding  # noqa: F401  (python-ptrace: the extra yama-run[ptrace])
except ImportError:
    pytestmark = pytest.mark.skip(reason="needs python-ptrace (pip install 'yama-run[ptrace]')")
else:
    pytestmark = [requires_root, requires_tool("setpriv")]

# The scenarios and fixtures of the module tests, reused.
from test_hardlinks import ERROR_CASES, RULE_CASES, SYSCTL, native as hl_native  # noqa: E402
from test_hardlinks import sandboxed as hl_sandboxed, tree  # noqa: E402,F401
from test_ptrace import (ACCESS_OPS, AS_USER, DESCENDANTS, RELATIONS,  # noqa: E402,F401
                         ok, outsider, parse, probe, profile, rel_arg, sandbox,
                         NO_LANDLOCK)

PTRACE = ("--backend", "ptrace")
KERNEL_REFUSES = {"ATTACH", "SEIZE"}      # the target already has a tracer: us


@pytest.fixture
def link_probe(helper):
    return helper("link_probe")


def audit_records(path) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


# -- the ptrace module ------------------------------------------------------------

def module_allows(scope: int, relation: str) -> bool:
    return scope == 0 or (scope == 1 and relation in DESCENDANTS)


@pytest.mark.parametrize("relation", RELATIONS)
@pytest.mark.parametrize("scope", [0, 1, 3])
def test_scope_matrix(sandbox, probe, outsider, tmp_path, scope, relation):
    """The matrix of test_ptrace.py: process_vm_* and pidfd_getfd (its fd passed
    into the caller, usable, close-on-exec) as under notify. An allowed ATTACH
    or SEIZE of a sandboxed task is refused by the kernel (EPERM) and not
    audited; a denied one is the module's, audited."""
    log = tmp_path / "audit.jsonl"
    out = sandbox(scope, probe, "run", rel_arg(relation, outsider),
                  "attach,seize,vmread,vmwrite,getfd,environ",
                  options=(*PTRACE, "--audit-log", log),
                  env=NO_LANDLOCK if relation == "unrelated" else None)
    assert out.rc == 0, ok(out)
    allowed = module_allows(scope, relation)
    inside = relation != "unrelated"          # the outsider has no tracer: attachable
    want = {op: "EPERM" if (op in KERNEL_REFUSES and inside) or not allowed else "0"
            for op in ACCESS_OPS}
    want["ENVIRON"] = "0"
    assert out.ops() == want, ok(out)
    audited = sorted(r["syscall"] for r in audit_records(log))
    assert audited == ([] if allowed else
                       ["pidfd_getfd", "process_vm_readv", "process_vm_writev", "ptrace",
                        "ptrace"]), ok(out)


def test_high_pid_bits_and_i386_abi(sandbox, probe, tmp_path):
    """A seccomp stop of an int $0x80 call is read with its own ABI."""
    log = tmp_path / "audit.jsonl"
    out = sandbox(1, probe, "run", "sibling", "attachhi,attach32,seize32",
                  options=(*PTRACE, "--audit-log", log))
    assert out.ops() == {"ATTACHHI": "EPERM", "ATTACH32": "EPERM", "SEIZE32": "EPERM"}, ok(out)
    assert [r["operation"] for r in audit_records(log)] == ["PTRACE_ATTACH", "PTRACE_ATTACH",
                                                           "PTRACE_SEIZE"], ok(out)


def test_getfd_from_a_non_leader_thread(sandbox, probe):
    """The fd goes into the calling thread's table (pidfd of the thread)."""
    out = sandbox(1, probe, "run", "-T", "child", "vmread,getfd", options=PTRACE)
    assert "ACTOR_TID" in out.facts, ok(out)
    assert out.ops() == {"VMREAD": "0", "GETFD": "0"}, ok(out)


def test_own_process_at_scope3(sandbox, probe):
    out = sandbox(3, probe, "run", "selfthread", "vmread,vmwrite,getfd,attach", options=PTRACE)
    assert out.ops() == {"VMREAD": "0", "VMWRITE": "0", "GETFD": "0", "ATTACH": "EPERM"}, ok(out)


@pytest.mark.parametrize("case, actor", [("pid", "0"), ("none", "EPERM")])
def test_set_ptracer_emulated(sandbox, probe, case, actor):
    """PR_SET_PTRACER answers 0 and grants what it grants under notify (shown on
    process_vm_readv: an attach would meet the kernel's refusal)."""
    steps = {"pid": ["actor"], "none": []}[case]
    out = sandbox(1, probe, "ptracer", "-o", "vmread,getfd", *steps, options=PTRACE)
    assert out.rc == 0, ok(out)
    if steps:
        assert out.results["PRCTL:actor"] == "0", ok(out)
    assert out.ops("actor") == {"VMREAD": actor, "GETFD": actor}, ok(out)
    assert out.ops("other") == {"VMREAD": "EPERM", "GETFD": "EPERM"}, ok(out)


def test_denial_audit_and_verbose_line_are_the_same(sandbox, probe, tmp_path):
    log = tmp_path / "audit.jsonl"
    out = sandbox(1, probe, "run", "sibling", "attach,vmread",
                  options=(*PTRACE, "--audit-log", log, "-v"))
    actor, target = out.pids["actor"], out.pids["target"]
    records = audit_records(log)
    assert [(r["syscall"], r["module"], r["errno"], r["pid"], r["target"], r["reason"])
            for r in records] == [("ptrace", "ptrace", "EPERM", actor, target,
                                   "not a descendant"),
                                  ("process_vm_readv", "ptrace", "EPERM", actor, target,
                                   "not a descendant")], records
    assert (f"yama-run: ptrace: denied PTRACE_ATTACH of {target} (yp-target) "
            f"by {actor} (yp-actor): not a descendant") in out.stderr.splitlines(), ok(out)


# -- the hardlinks module -----------------------------------------------------------

@pytest.mark.parametrize("args,expected", RULE_CASES, ids=[" ".join(a) for a, _ in RULE_CASES])
def test_hardlinks_rule(link_probe, tree, sysctl, args, expected):
    sysctl(SYSCTL, 0)
    assert hl_sandboxed(link_probe, tree, *args, extra=PTRACE) == expected
    assert hl_sandboxed(link_probe, tree, *args, extra=PTRACE,
                        env={**os.environ, "YAMA_RUN_NO_FAST_PATH": "1"}) == expected


@pytest.mark.parametrize("args", ERROR_CASES, ids=[" ".join(a) for a in ERROR_CASES])
def test_hardlinks_errno_parity(link_probe, tree, sysctl, args):
    sysctl(SYSCTL, 1)
    want = hl_native(link_probe, tree, *args)
    sysctl(SYSCTL, 0)
    assert hl_sandboxed(link_probe, tree, *args, extra=PTRACE) == want


def test_hardlinks_race_never_links_forbidden(helper, tree, sysctl):
    sysctl(SYSCTL, 0)
    race = helper("link_race")
    (tree / "own_a").write_text("a")
    os.chown(tree / "own_a", 1001, 1001)
    (tree / "other").rename(tree / "oth_a")
    out = yama_run(*PTRACE, "--", *AS_USER, race, "d", "own_a", "oth_a", "1000", cwd=tree,
                   timeout=120)
    fields = dict(kv.split("=") for kv in out.stdout.split()[1:])
    assert int(fields["links"]) > 0 and fields["forbidden"] == "0", out.stdout + out.stderr


# -- a program must not notice the tracer --------------------------------------------

def traced(*cmd, options=(), **kwargs):
    return yama_run(*PTRACE, *options, "--", *cmd, **kwargs)


def py(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def test_verbose_names_the_backend_and_its_limit():
    r = traced("true", options=("-v",))
    assert r.returncode == 0, r.stderr
    assert "yama-run: backend: ptrace; debuggers inside the sandbox cannot attach" in r.stderr
    r = yama_run("-v", "--backend", "notify", "--", "true")
    assert "yama-run: backend: notify" in r.stderr.splitlines()


@pytest.mark.parametrize("script, status", [("exit 7", 7), ("kill -TERM $$", -15),
                                             ("kill -KILL $$", -9)])
def test_exit_status_kept(script, status):
    assert traced("sh", "-c", script).returncode == status


def test_handled_signal_is_delivered():
    r = traced("sh", "-c", 'trap "echo got-usr1" USR1; kill -USR1 $$; echo after')
    assert r.stdout.split() == ["got-usr1", "after"], r.stderr


STOPPED_CHILD = """
    import os, signal, time
    pid = os.fork()
    if pid == 0:
        os.kill(os.getpid(), signal.SIGSTOP)
        time.sleep(0.5)                 # not a zombie yet when the parent asks
        os._exit(5)
    _, st = os.waitpid(pid, os.WUNTRACED)
    print("STOPPED", os.WSTOPSIG(st) if os.WIFSTOPPED(st) else "no")
    time.sleep(0.3)
    print("STILL", os.waitpid(pid, os.WNOHANG) == (0, 0))
    os.kill(pid, signal.SIGCONT)
    _, st = os.waitpid(pid, os.WCONTINUED)
    print("CONTINUED", os.WIFCONTINUED(st))
    _, st = os.waitpid(pid, 0)
    print("EXIT", os.waitstatus_to_exitcode(st))
"""


def test_group_stop_and_continue_as_without_tracer():
    """A child stops itself: its parent sees it stopped, it stays stopped until
    SIGCONT, the parent sees it continued, then its exit status."""
    native = os.popen(shlex.join(py(STOPPED_CHILD))).read().split("\n")
    r = traced(*py(STOPPED_CHILD), timeout=30)
    assert r.stdout.split("\n") == native == ["STOPPED 19", "STILL True", "CONTINUED True",
                                              "EXIT 5", ""], r.stderr


def test_exec_from_a_non_leader_thread():
    r = traced(*py("""
        import os, threading
        t = threading.Thread(target=lambda: os.execv("/bin/sh", ["sh", "-c", "echo execd; exit 4"]))
        t.start(); t.join()
    """))
    assert (r.returncode, r.stdout) == (4, "execd\n"), r.stderr


def test_fork_vfork_and_threads_with_hooked_calls(helper):
    r = traced(helper("forktree"), "30", timeout=60)
    assert r.stdout.split() == ["TREE", "30", "0"], r.stderr
    r = traced(helper("threads"), "8", "50", timeout=60)
    assert r.stdout.split() == ["THREADS", "800", "0"], r.stderr
    r = traced(*py("""
        import subprocess                      # posix_spawn / vfork in CPython
        print(subprocess.run(["sh", "-c", "exit 3"]).returncode)
    """))
    assert r.stdout == "3\n", r.stderr


# -- nesting --------------------------------------------------------------------------

@pytest.fixture
def ptrace_only(tmp_path):
    path = tmp_path / "ptrace-only.toml"
    path.write_text('chain = ["ptrace"]\n\n[ptrace]\nscope = 1\n')
    return str(path)


def test_nested_auto_falls_back_to_ptrace(probe, ptrace_only, tmp_path, sysctl):
    """Inside a notify yama-run, an inner one cannot have a listener (EBUSY):
    with auto it runs traced. It cannot lower the outer scope (the outer's
    denial stands), and it adds what the outer does not hook (its hardlinks
    module denies a link the outer would let through)."""
    sysctl(SYSCTL, 0)                   # the kernel would refuse the link itself
    (tmp_path / "other").write_text("x")
    os.chown(tmp_path / "other", 1002, 1002)
    tmp_path.chmod(0o777)
    inner_log = tmp_path / "inner.jsonl"
    inner = [*YAMA_RUN, "-v", "--audit-log", str(inner_log), "--set", "ptrace.scope=0", "--"]
    script = (f"{shlex.join([*inner, *AS_USER, probe, 'run', 'sibling', 'attach'])}; "
              f"echo INNER_STATUS $?; "
              f"{shlex.join([*inner, *AS_USER, 'ln', 'other', 'mine'])}; echo LN_STATUS $?")
    r = yama_run("--backend", "notify", "--profile", ptrace_only, "--", "sh", "-c", script,
                 cwd=tmp_path, timeout=60)
    out = parse(r)
    assert "falling back to the ptrace backend" in r.stderr, ok(out)
    assert "yama-run: backend: ptrace" in r.stderr, ok(out)
    assert out.facts["INNER_STATUS"] == "0", ok(out)
    assert out.ops() == {"ATTACH": "EPERM"}, ok(out)            # the outer's scope 1
    assert out.facts["LN_STATUS"] != "0" and not (tmp_path / "mine").exists(), ok(out)
    assert [(r["module"], r["syscall"]) for r in audit_records(inner_log)] == \
        [("hardlinks", "linkat")], ok(out)


def hide_python_ptrace(tmp_path) -> str:
    """A PYTHONPATH under which `import ptrace` fails."""
    blocker = tmp_path / "noptrace" / "ptrace"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('python-ptrace hidden')\n")
    return f"{tmp_path / 'noptrace'}:{os.environ.get('PYTHONPATH', '')}"


def test_ptrace_backend_without_python_ptrace(tmp_path):
    r = yama_run("--backend", "ptrace", "--", "true",
                 env={**os.environ, "PYTHONPATH": hide_python_ptrace(tmp_path)})
    assert r.returncode == 125
    assert "the ptrace backend needs python-ptrace: pip install 'yama-run[ptrace]'" in r.stderr


def test_nested_without_python_ptrace_says_so(probe, ptrace_only, tmp_path):
    """Without python-ptrace the inner yama-run keeps the clear message, 125."""
    path = hide_python_ptrace(tmp_path)
    inner = ["env", f"PYTHONPATH={path}", *YAMA_RUN, "--", "true"]
    r = yama_run("--backend", "notify", "--profile", ptrace_only, "--", "sh", "-c",
                 f"{shlex.join(inner)}; echo INNER_STATUS $?", timeout=60)
    assert "INNER_STATUS 125" in r.stdout, r.stderr
    assert "cannot install the seccomp filter: Device or resource busy" in r.stderr
    assert "pip install 'yama-run[ptrace]'" in r.stderr


def test_nested_inside_ptrace_backend_fails_clearly():
    """Inside a traced yama-run neither backend can work (no listener: EBUSY;
    the program has its tracer already): 125 and why, the outer goes on."""
    inner = [*YAMA_RUN, "--", "true"]
    r = traced("sh", "-c", f"{shlex.join(inner)}; echo INNER_STATUS $?")
    assert r.returncode == 0 and "INNER_STATUS 125" in r.stdout, r.stderr
    assert "falling back to the ptrace backend" not in r.stderr      # not -v
    assert "cannot trace the program: PTRACE_SEIZE: Operation not permitted" in r.stderr


def test_nested_inside_ptrace_backend_says_it_is_traced():
    """With -v, the inner yama-run says it is traced, not that the kernel
    lacks WAIT_KILLABLE_RECV (6.18 has it: review 11-B, finding 4)."""
    inner = [*YAMA_RUN, "-v", "--", "true"]
    r = traced("sh", "-c", f"{shlex.join(inner)}; echo INNER_STATUS $?")
    assert r.returncode == 0 and "INNER_STATUS 125" in r.stdout, r.stderr
    assert "kernel lacks WAIT_KILLABLE_RECV" not in r.stderr
    assert re.search(r"yama-run: we are traced \(by \d+, such as an outer yama-run with the "
                     r"ptrace backend\): the probe for WAIT_KILLABLE_RECV failed", r.stderr), \
        r.stderr


# -- the limit: no debugger inside ---------------------------------------------------

def test_debugger_inside_gets_eperm_from_the_kernel(sandbox, probe, tmp_path):
    """scope 0: the module allows everything, yet ATTACH, SEIZE and TRACEME of
    a child fail: the child is traced already (by the supervisor). Nothing is
    audited: it is the kernel's refusal, not a policy's."""
    log = tmp_path / "audit.jsonl"
    out = sandbox(0, probe, "run", "child", "attach,seize,vmread",
                  options=(*PTRACE, "--audit-log", log))
    assert out.ops() == {"ATTACH": "EPERM", "SEIZE": "EPERM", "VMREAD": "0"}, ok(out)
    out = sandbox(0, probe, "traceme", options=(*PTRACE, "--audit-log", log))
    assert out.results["TRACEME"] == "EPERM", ok(out)
    assert audit_records(log) == []


@requires_tool("strace")
def test_strace_inside_does_not_work():
    r = traced("strace", "-o", "/dev/null", "true")
    assert r.returncode != 0
    assert "Operation not permitted" in r.stderr
    r = yama_run("--backend", "notify", "--", "strace", "-o", "/dev/null", "true")
    assert r.returncode == 0, r.stderr                  # the notify backend has no such limit


# -- no way out of the tracer's sight ----------------------------------------------

GUARDS = """
    import ctypes, errno, os
    libc = ctypes.CDLL(None, use_errno=True)
    def err(r):
        return errno.errorcode.get(ctypes.get_errno(), "?") if r < 0 else "ok"
    class Insn(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte),
                    ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]
    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Insn))]
    allow = (Insn * 1)(Insn(0x06, 0, 0, 0x7FFF0000))
    libc.prctl(38, 1, 0, 0, 0)                                   # PR_SET_NO_NEW_PRIVS
    r = libc.syscall(317, 1, 1 << 3, ctypes.byref(Prog(1, allow)))   # NEW_LISTENER
    print("LISTENER", err(r))
    r = libc.syscall(56, 0x00800000 | 17, 0, 0, 0, 0)            # clone(CLONE_UNTRACED)
    if r == 0:
        os._exit(0)
    print("UNTRACED", err(r))
    if r > 0:
        os.waitpid(r, 0)
"""


@pytest.mark.parametrize("backend, want", [
    ("notify", ["LISTENER EBUSY", "UNTRACED ok"]),
    ("ptrace", ["LISTENER EBUSY", "UNTRACED EPERM"])])
def test_program_cannot_leave_the_tracer(backend, want):
    """A user-notify filter of the program's own would outrank SECCOMP_RET_TRACE
    and a CLONE_UNTRACED child would not be ours to trace: both are refused
    under ptrace (EBUSY is also what notify gives: our listener is there)."""
    r = yama_run("--backend", backend, "--", *py(GUARDS))
    assert r.stdout.splitlines() == want, r.stderr
    native = os.popen(shlex.join(py(GUARDS))).read().splitlines()
    assert native == ["LISTENER ok", "UNTRACED ok"]


LINKS_UNDER_SIGNALS = """
    import os, signal, sys, tempfile, threading, time
    d = tempfile.mkdtemp()
    open(f"{d}/src", "w").close()
    signal.signal(signal.SIGUSR1, lambda *a: None)    # no SA_RESTART, as Python does
    main, stop = threading.get_ident(), []
    def pester():
        while not stop:
            signal.pthread_kill(main, signal.SIGUSR1)
            time.sleep(0.0001)
    t = threading.Thread(target=pester)
    t.start()
    out = {"made": 0}
    try:
        for i in range(2000):
            try:
                os.link(f"{d}/src", f"{d}/n{i}")       # os.link does not retry EINTR
                out["made"] += 1
            except OSError as exc:
                out[exc.__class__.__name__] = out.get(exc.__class__.__name__, 0) + 1
    finally:
        stop.append(1)
        t.join()
    print(sorted(out.items()), len(os.listdir(d)) - 1)
"""


def test_emulated_link_is_made_once_and_not_interrupted():
    """Under ptrace a stopped caller waits until it is answered (only SIGKILL
    ends a ptrace-stop): every link is made once, none fails."""
    r = yama_run("--backend", "ptrace", "--", *py(LINKS_UNDER_SIGNALS), timeout=120)
    assert r.stdout.strip() == "[('made', 2000)] 2000", r.stdout + r.stderr


def test_a_signal_before_the_notification_is_received_means_eintr_never_twice():
    """Under notify a handled signal that arrives before the supervisor has
    received the notification ends the caller's wait (WAIT_KILLABLE_RECV holds
    it only afterwards): linkat returns EINTR to a handler without SA_RESTART,
    where natively it never does (docs/modules.md). What must hold: such a call
    did nothing, so every link counted as made exists, none was made twice
    (EEXIST), and EINTR is the only failure."""
    r = yama_run("--backend", "notify", "--", *py(LINKS_UNDER_SIGNALS), timeout=120)
    counts, on_disk = r.stdout.strip().rsplit(" ", 1)
    counts = dict(ast.literal_eval(counts))
    assert set(counts) <= {"made", "InterruptedError"}, r.stdout + r.stderr
    assert sum(counts.values()) == 2000 and counts.get("made", 0) == int(on_disk), r.stdout


@pytest.mark.parametrize("order", ["reader first", "writer first"])
def test_fifo_opens_that_wait_under_the_path_walk(tmp_path, order):
    """With the path walk on (symlinks enforced by yama-run), a FIFO open that
    waits for its peer must not stall the single tracer thread: the peer's own
    open is a traced call too."""
    fifo = tmp_path / "ff"
    os.mkfifo(fifo)
    if order == "reader first":
        script = f"(sleep 1; echo hi > {fifo}) & cat {fifo}; wait"
    else:
        script = f"(echo hi > {fifo}) & sleep 1; cat {fifo}; wait"
    r = yama_run(*PTRACE, "--set", "symlinks.protected=1", "--", "sh", "-c", script, timeout=30)
    assert (r.returncode, r.stdout) == (0, "hi\n"), r


@pytest.mark.parametrize("who", [[], AS_USER], ids=["root", "uid 1001"])
def test_a_waiting_open_gets_its_own_answer_after_an_exec(helper, who):
    """The leader waits to read FIFO a (a worker opens it) while another
    thread execs, taking its tid; the new leader waits to read FIFO b, and a
    thread of its own opens a for writing without waiting, then b, and
    writes "b" into it: 8 images in a row. The new leader's open of b returns
    b (it reads "b"), as natively. The answer the worker made for the killed
    leader's open of a used to be applied to the new leader's open of b,
    matched by the tid alone (it read "a": review 10-B, finding 1)."""
    fifos = tempfile.mkdtemp(prefix="yr-stale-", dir="/tmp")
    os.chmod(fifos, 0o755)
    try:
        for run in ("native", "traced"):
            os.mkdir(f"{fifos}/{run}")
            os.chmod(f"{fifos}/{run}", 0o777)         # uid 1001 makes its FIFOs there
        cmd = [*who, helper("stale_answer")]
        native = subprocess.run([*cmd, f"{fifos}/native", "8"], capture_output=True, text=True,
                                timeout=60)
        assert native.stdout == "rounds=8 armed=0 wrong=0\n", native.stdout + native.stderr
        r = traced(*cmd, f"{fifos}/traced", "8", timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert re.fullmatch(r"rounds=8 armed=\d wrong=0\n", r.stdout), r.stdout + r.stderr
    finally:
        shutil.rmtree(fifos, ignore_errors=True)


@pytest.mark.parametrize("backend", ["notify", "ptrace"])
def test_opens_near_the_descriptor_limit_fail_with_emfile(tmp_path, backend):
    """The ptrace backend passes an open's result in through a socketpair it
    makes in the caller: two numbers more for a moment (docs/backends.md). With
    the last numbers taken by that pair the kernel drops the passed descriptor
    (MSG_CTRUNC); the caller got EBADMSG for that open and every later one, an
    errno a program that frees descriptors on EMFILE does not know."""
    code = f"""
        import errno, os, resource
        os.closerange(3, 1 << 16)
        resource.setrlimit(resource.RLIMIT_NOFILE, (6, 6))
        got = []
        for i in range(6):
            try:
                got.append(str(os.open({str(tmp_path)!r} + f"/f{{i}}", os.O_RDWR | os.O_CREAT, 0o600)))
            except OSError as e:
                got.append(errno.errorcode[e.errno])
        print(" ".join(got))
    """
    r = yama_run("--backend", backend, "--", *py(code))
    assert r.returncode == 0, r.stderr
    got = r.stdout.split()
    opened = [g for g in got if g.isdigit()]
    assert opened == [str(n) for n in range(3, 3 + len(opened))] and opened, got
    assert set(got[len(opened):]) == {"EMFILE"}, got
    if backend == "notify":
        assert opened == ["3", "4", "5"], got      # as natively


@pytest.mark.parametrize("backend", ["notify", "ptrace"])
def test_a_user_started_supervisor_is_not_dumpable(as_user, backend):
    """The supervisor makes itself non-dumpable once the program runs, under
    both backends: its /proc entries are then root's, and a program of the
    same uid cannot search them (the ptrace backend's stayed dumpable: its fd
    directory was the user's, and names in it told the program which
    descriptors the supervisor held)."""
    proc = subprocess.Popen(as_user.command("--backend", backend, "--", "/bin/sh", "-c",
                                            'echo $PPID; read go'),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=as_user.env(),
                            cwd=str(as_user.home))
    try:
        supervisor = int(proc.stdout.readline())
        owner = os.stat(f"/proc/{supervisor}/fd").st_uid
        proc.communicate("\n", timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert owner == 0, f"/proc/{supervisor}/fd belongs to uid {owner}"


# -- a sibling's execve while a call is served ------------------------------------

def test_exec_beside_an_fd_injection_exits_zero(helper):
    """Four processes, 300 tries each: a leader opening a file in a loop (its
    descriptors passed in by injected calls) while another thread execs an
    image that exits 0. Every try exits 0, as natively. The exec killing the
    leader during an injection was taken for a broken injection, and the
    tracer SIGKILLed the process mid-exec (status 0x9, 1-2 tries in 300;
    review 11-A, finding 1)."""
    exe = helper("exec_beside_injection")
    native = subprocess.run([exe, "100"], capture_output=True, text=True, timeout=60)
    assert native.stdout == "tries=100 bad=0\n", native.stdout
    r = traced("sh", "-c", f"for i in 1 2 3 4; do {exe} 300 & done; wait", timeout=120)
    assert r.stdout.split("\n") == ["tries=300 bad=0"] * 4 + [""], r.stdout + r.stderr


@pytest.mark.parametrize("who", [[], AS_USER], ids=["root", "uid 1001"])
def test_a_waiting_open_killed_by_an_exec_leaves_no_reader(helper, who):
    """Six processes, 15 tries each: the leader waits to read a fresh FIFO (a
    worker opens it) while another thread execs; 200 ms later (past the
    worker's 100 ms tick) the new image opens the FIFO for writing with
    O_NONBLOCK: ENXIO, as natively, since its only reader died in the exec.
    A caller killed while its call was decided (the worker just started) was
    never kept as waiting nor its worker cancelled: the worker stayed the
    FIFO's reader for as long as the process lived, and such workers piled
    up to EMFILE (review 11-A, finding 2)."""
    fifos = tempfile.mkdtemp(prefix="yr-leak-", dir="/tmp")
    os.chmod(fifos, 0o755)
    try:
        for i in range(6):
            os.mkdir(f"{fifos}/{i}")
            os.chmod(f"{fifos}/{i}", 0o777)           # uid 1001 makes its FIFOs there
        cmd = shlex.join([*who, helper("exec_beside_waiting_open")])
        r = traced("sh", "-c", f"for i in 0 1 2 3 4 5; do {cmd} {fifos}/$i 15 & done; wait",
                   timeout=120)
        assert r.stdout.split("\n") == ["tries=15 leaks=0 other=0"] * 6 + [""], \
            r.stdout + r.stderr
    finally:
        shutil.rmtree(fifos, ignore_errors=True)


# -- a caller waiting in a worker's open, and a signal that ends it ----------------

@pytest.mark.parametrize("sig, to", [(signal.SIGTERM, "program"), (signal.SIGHUP, "program"),
                                     (signal.SIGTERM, "yama-run")])
def test_a_signal_ends_a_program_waiting_to_open_a_fifo(tmp_path, sig, to):
    """A shell waits to open a FIFO for writing (no reader: a worker opens
    it). SIGTERM or SIGHUP, to it or to yama-run (which forwards it), ends it
    within a second, of that signal, as natively and under notify. A traced
    task gets no fatal-signal shortcut: it stayed in its seccomp stop until
    a reader came or SIGKILL (timeout(1), kill PID, closing the terminal all
    failed; review 11-B, finding 1)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    front = subprocess.Popen([*YAMA_RUN, *PTRACE, "--", "sh", "-c", f'echo $$; exec 3>{fifo}'],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=tree_env(None))
    try:
        pid = int(front.stdout.readline())
        time.sleep(0.5)                        # in its open by now
        os.kill(pid if to == "program" else front.pid, sig)
        sent = time.monotonic()
        status = front.wait(timeout=5)
        took = time.monotonic() - sent
    finally:
        front.kill()
        front.wait()
    assert status == -sig and took < 1, (status, took, front.stderr.read())


def _cpu_cgroup_limits() -> tuple[str, dict[str, str]] | None:
    """Where a CPU cgroup can be made, and the files that hold its tasks to
    1 ms of CPU a second: v1's cpu controller, or v2's cpu.max."""
    v1, v2 = "/sys/fs/cgroup/cpu", "/sys/fs/cgroup"
    if os.path.exists(f"{v1}/cpu.cfs_quota_us"):
        return v1, {"cpu.cfs_period_us": "1000000", "cpu.cfs_quota_us": "1000"}
    try:
        with open(f"{v2}/cgroup.subtree_control") as f:
            if "cpu" in f.read().split():
                return v2, {"cpu.max": "1000 1000000"}
    except OSError:
        pass
    return None


@pytest.fixture
def throttled_cgroup():
    """A new cgroup throttled to 1 ms of CPU a second; yields a function that
    moves a pid in. Removed afterwards (its tasks have ended by then)."""
    where = _cpu_cgroup_limits()
    if where is None:
        pytest.skip("needs a cgroup CPU controller (v1 cpu, or cpu in v2's subtree_control)")
    path = tempfile.mkdtemp(prefix="yr-throttle-", dir=where[0])
    try:
        for name, value in where[1].items():
            with open(os.path.join(path, name), "w") as f:
                f.write(value)

        def move(pid: int) -> None:
            with open(os.path.join(path, "cgroup.procs"), "w") as f:
                f.write(str(pid))
        yield move
    finally:
        for _ in range(50):                   # its last task's exit is seen a little later
            try:
                os.rmdir(path)
                break
            except OSError:
                time.sleep(0.1)


def test_a_caller_starved_of_cpu_while_given_a_descriptor_is_not_killed(helper,
                                                                       throttled_cgroup):
    """The program alone (not yama-run) in a cgroup throttled to 1 ms of CPU
    a second computes 3 ms, then opens a file: the injection that gives it
    the descriptor waits, runnable, seconds for its periods. Its open
    succeeds, as natively.
    With a second of wall clock per injection, a caller that waited for a
    CPU was killed, silently (a SCHED_IDLE program beside busy processes:
    137, 3 runs in 3; review 11-A, finding 3). Then, with its wall time less
    its waits for a CPU, it was killed still (3 runs in 4 here; once in CI
    beside busy processes, "its injected call's stop never came"): the
    kernel counts a wait (schedstat's run delay) only when it ends, so the
    one under way counted as the caller's own, as did its time in its stops
    waiting for the tracer."""
    p = subprocess.Popen([*YAMA_RUN, *PTRACE, "--", "sh", "-c",
                          f"echo $$; read go; exec {helper('starved_opens')} 0 1 3"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=tree_env(None))
    try:
        throttled_cgroup(int(p.stdout.readline()))
        p.stdin.write("go\n")
        p.stdin.flush()
        out, err = p.communicate(timeout=90)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert (p.returncode, out) == (0, "opened=1\n"), err
