"""The compiled plan (sandbox/plan.py) and the launch path that runs from it
(sandbox/launch.py): a second run of the same command starts from the cached
plan, a change to any input makes it again, a plan another user could have
written is never read, and a run from the cache installs the same filter and
denies the same things as a run without one."""
from __future__ import annotations

import ctypes
import errno
import marshal
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import ROOT, requires_root, requires_tool, yama_run

FROM_CACHE = "plan: from the cache"


def run(cache: Path, *args, **kwargs) -> subprocess.CompletedProcess:
    """yama-run -v ARGS with its plans under cache."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), **kwargs.pop("env", {})}
    return yama_run("-v", *args, env=env, **kwargs)


def plan_said(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("yama-run: plan:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def settle() -> None:
    """A plan is only kept when no input changed in the second before the run
    (timestamps are coarse); tests that just wrote a profile wait that out."""
    time.sleep(1.1)


def cached_twice(cache: Path, *args) -> Path:
    """Run twice: the first keeps a plan, the second starts from it; its path."""
    first = run(cache, *args)
    assert first.returncode == 0, first.stderr
    assert "kept in " in plan_said(first), first.stderr
    second = run(cache, *args)
    assert second.returncode == 0, second.stderr
    assert FROM_CACHE in plan_said(second), second.stderr
    return Path(plan_said(second).rsplit("(", 1)[1].rstrip(")"))


def profile(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- a plan is kept, owner-only, and used ------------------------------------------------

def test_second_run_starts_from_the_cached_plan_kept_owner_only(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    plan = cached_twice(cache, "--", "true")
    assert plan.parent == cache / "yama-run" / "plans"
    assert plan.stat().st_mode & 0o777 == 0o600
    assert plan.parent.stat().st_mode & 0o777 == 0o700
    assert (cache / "yama-run").stat().st_mode & 0o777 == 0o700


def test_errors_keep_their_messages_and_statuses_from_the_cache(tmp_path):
    cache = tmp_path / "cache"
    missing = tmp_path / "no-such-program"
    cold = run(cache, "--", missing)
    cached = run(cache, "--", missing)
    assert cold.returncode == cached.returncode == 127
    message = f"yama-run: {missing}: No such file or directory"
    assert message in cold.stderr and message in cached.stderr
    assert FROM_CACHE in plan_said(cached)
    status = run(cache, "--", "sh", "-c", "exit 7")
    assert run(cache, "--", "sh", "-c", "exit 7").returncode == status.returncode == 7


def test_options_the_launch_path_does_not_read_go_the_cold_way(tmp_path):
    cache = tmp_path / "cache"
    cached_twice(cache, "--", "true")
    r = run(cache, "--learn", "--audit-log", tmp_path / "learn.jsonl", "--", "true")
    assert r.returncode == 0, r.stderr
    assert "no cached plan: options the launch path does not read" in plan_said(r)
    assert "not kept: a learning run" in plan_said(r)


# -- rebuilt whenever an input changes ------------------------------------------------------

@requires_tool("strace")
@pytest.mark.parametrize("changed", ["profile", "include"])
def test_a_changed_profile_file_or_include_is_compiled_again(tmp_path, changed):
    cache = tmp_path / "cache"
    base = profile(tmp_path, "base.toml", 'chain = ["ptrace"]\n[ptrace]\nscope = 1\n')
    p = (profile(tmp_path, "p.toml", 'include = "./base.toml"\n') if changed == "include"
         else base)
    settle()
    cached_twice(cache, "--profile", p, "--", "strace", "-o", "/dev/null", "true")
    base.write_text('chain = ["ptrace"]\n[ptrace]\nscope = 3\n')
    r = run(cache, "--profile", p, "--", "strace", "-o", "/dev/null", "true")
    assert f"changed since the plan was made: {base}" in plan_said(r)
    assert r.returncode != 0                 # scope 3: strace may not trace its child
    assert "ptrace_scope 3: attaching is disabled" in r.stderr


@requires_tool("strace")
def test_set_makes_a_plan_of_its_own(tmp_path):
    cache = tmp_path / "cache"
    cached_twice(cache, "--", "strace", "-o", "/dev/null", "true")
    r = run(cache, "--set", "ptrace.scope=3", "--", "strace", "-o", "/dev/null", "true")
    assert "no plan for this command yet" in plan_said(r)
    assert "ptrace_scope 3: attaching is disabled" in r.stderr and r.returncode != 0
    again = run(cache, "--set", "ptrace.scope=3", "--", "strace", "-o", "/dev/null", "true")
    assert FROM_CACHE in plan_said(again)
    assert "ptrace_scope 3: attaching is disabled" in again.stderr and again.returncode != 0
    plain = run(cache, "--", "strace", "-o", "/dev/null", "true")
    assert FROM_CACHE in plan_said(plain) and plain.returncode == 0, plain.stderr


def test_an_older_kernels_landlock_makes_a_plan_of_its_own(tmp_path):
    """YAMA_RUN_LANDLOCK_ABI (the tests' older kernel) changes the domain
    and the routes: a plan made without it is never used with it."""
    cache = tmp_path / "cache"
    cached_twice(cache, "--profile", "strict", "--", "true")
    older = {"YAMA_RUN_LANDLOCK_ABI": "5"}
    r = run(cache, "--profile", "strict", "--", "true", env=older)
    assert "no plan for this command yet" in plan_said(r), r.stderr
    assert "ABI 5: ptrace domain" in r.stderr, r.stderr
    again = run(cache, "--profile", "strict", "--", "true", env=older)
    assert FROM_CACHE in plan_said(again) and "ABI 5: ptrace domain" in again.stderr, again.stderr


def test_a_profile_created_where_the_lookup_looked_is_found(tmp_path):
    """The lookup's directories are inputs too: a user profile made after the
    plan was kept is used by the next run."""
    cache, config = tmp_path / "cache", tmp_path / "config"
    (config / "yama-run" / "profiles").mkdir(parents=True)
    env = {"XDG_CONFIG_HOME": str(config)}
    settle()
    run(cache, "--", "true", env=env)
    assert FROM_CACHE in plan_said(run(cache, "--", "true", env=env))
    (config / "yama-run" / "profiles" / "true.toml").write_text('chain = ["hardlinks"]\n')
    r = run(cache, "--", "true", env=env)
    assert "changed since the plan was made" in plan_said(r)
    assert "yama-run: profile true (" in r.stderr and "user; named true): hardlinks\n" in r.stderr


def tree_copy(into: Path) -> Path:
    """This tree's package, profiles and built extension, to change a module's code."""
    tree = into / "tree"
    shutil.copytree(Path(ROOT) / "sandbox", tree / "sandbox",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(Path(ROOT) / "profiles", tree / "profiles")
    shutil.copy(Path(ROOT) / "pyproject.toml", tree)
    return tree


def test_a_changed_module_is_compiled_again(tmp_path):
    cache = tmp_path / "cache"
    tree = tree_copy(tmp_path)
    env = {"PYTHONPATH": str(tree)}
    settle()

    def copy_run():
        return subprocess.run([sys.executable, "-m", "sandbox.cli", "-v", "--", "true"],
                              capture_output=True, text=True, timeout=60, cwd=tree,
                              env={**os.environ, **env, "XDG_CACHE_HOME": str(cache)})
    first, second = copy_run(), copy_run()
    assert "kept in" in plan_said(first) and FROM_CACHE in plan_said(second), second.stderr
    module = tree / "sandbox" / "modules" / "ptrace.py"
    with module.open("a") as f:
        f.write("# changed\n")
    r = copy_run()
    assert f"changed since the plan was made: {module}" in plan_said(r)
    assert r.returncode == 0, r.stderr


def test_a_sysctl_that_auto_reads_is_compiled_again(tmp_path, sysctl):
    cache = tmp_path / "cache"
    sysctl("fs.protected_symlinks", 0)
    settle()
    cached_twice(cache, "--", "true")
    sysctl("fs.protected_symlinks", 1)
    r = run(cache, "--", "true")
    assert "changed since the plan was made: fs.protected_symlinks" in plan_said(r)
    # the kernel enforces level 1 now: "auto" leaves it to the kernel
    assert "symlinks: level 1 enforced by yama-run" not in r.stderr
    again = run(cache, "--", "true")
    assert FROM_CACHE in plan_said(again)
    assert "symlinks: level 1 enforced by yama-run" not in again.stderr


# -- never trusted if another user could have written it -----------------------------------

def forged(plan: Path) -> None:
    """Rewrite a kept plan so that its use would show: an extra -v line."""
    data = marshal.loads(plan.read_bytes())
    data["says"] = [*data["says"], "FORGED PLAN USED"]
    plan.write_bytes(marshal.dumps(data))


def of_others(path) -> None:
    """path's group made one of others (gid 1234, no one's own): the write
    bit of its owner's own group is no one else's (plan.trusted)."""
    if path.stat().st_mode & 0o020:
        if os.geteuid() != 0:
            pytest.skip("needs root to give the file a group of others")
        os.chown(path, -1, 1234)


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o640])
def test_a_plan_others_may_write_or_read_is_not_trusted(tmp_path, mode):
    cache = tmp_path / "cache"
    plan = cached_twice(cache, "--", "true")
    forged(plan)
    plan.chmod(mode)
    of_others(plan)
    r = run(cache, "--", "true")
    assert r.returncode == 0, r.stderr
    assert "FORGED" not in r.stderr
    assert f"{plan} is not a file of uid {os.geteuid()} that only it can write: not trusted" \
        in plan_said(r)


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777])
def test_a_plan_directory_others_may_write_is_not_trusted(tmp_path, mode):
    cache = tmp_path / "cache"
    plan = cached_twice(cache, "--", "true")
    forged(plan)
    plan.parent.chmod(mode)
    of_others(plan.parent)
    r = run(cache, "--", "true")
    assert r.returncode == 0, r.stderr
    assert "FORGED" not in r.stderr
    said = plan_said(r)
    assert "not trusted" in said and "not kept" in said, said


@requires_root
def test_a_plan_of_another_owner_is_not_trusted(tmp_path):
    cache = tmp_path / "cache"
    plan = cached_twice(cache, "--", "true")
    forged(plan)
    os.chown(plan, 1001, 1001)
    r = run(cache, "--", "true")
    assert "FORGED" not in r.stderr and "not trusted" in plan_said(r), r.stderr
    os.chown(plan, 0, 0)
    os.chown(plan.parent, 1001, 1001)
    r = run(cache, "--", "true")
    assert "FORGED" not in r.stderr and "not trusted" in plan_said(r), r.stderr


# uid 1001 tries to attach to pid 1: a ptrace denial, kept in the journal.
DENIED = "import ctypes; ctypes.CDLL(None).ptrace(16, 1, 0, 0)"
AS_1001 = ["setpriv", "--reuid=1001", "--regid=1001", "--clear-groups"]


@requires_root
def test_root_with_a_users_home_makes_no_directory_there():
    """Root's yama-run run with uid 1001's HOME (sudo -E, su -m), which had
    no ~/.cache: root made a root-owned, 0700 ~/.cache there (and kept its
    plans in it), where uid 1001's own programs could then make nothing
    (~/.cache/fontconfig); its denials made ~/.local/state the same way. A
    directory is now made only inside one of the effective uid's."""
    base = Path(tempfile.mkdtemp(prefix="yama-run-home-"))   # (uid 1001 may enter it)
    try:
        base.chmod(0o755)
        home = base / "home"
        home.mkdir()
        os.chown(home, 1001, 1001)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("XDG_")},
               "HOME": str(home)}
        r = yama_run("-v", "--", "true", env=env)
        assert r.returncode == 0, r.stderr
        assert plan_said(r).endswith(f"not kept: {home}/.cache: not made: {home} is a "
                                     "directory of uid 1001"), r.stderr
        denied = yama_run("--", *AS_1001, "/usr/bin/python3", "-c", DENIED, env=env)
        assert denied.returncode == 0 and "ptrace: denied" in denied.stderr, denied.stderr
        assert list(home.iterdir()) == []
        made = subprocess.run([*AS_1001, "mkdir", "-p", str(home / ".cache" / "fontconfig")])
        assert made.returncode == 0
    finally:
        shutil.rmtree(base)


@requires_root
def test_root_with_a_users_home_follows_no_link_of_that_user():
    """uid 1001 makes its ~/.cache and ~/.local links to a root-only
    directory (standing for /usr/local or /etc); root run with that HOME
    made share/applications, yama-run/plans and state/yama-run there and
    wrote a menu entry, a plan and a denial record in them (review 11-H,
    finding 2). A link of another uid in the path is not followed: the plan
    is not kept, the record not written, --install-desktop ends 125."""
    base = Path(tempfile.mkdtemp(prefix="yama-run-home-"))   # (uid 1001 may enter it)
    try:
        base.chmod(0o755)
        home, rootonly = base / "home", base / "rootonly"
        home.mkdir()
        rootonly.mkdir()
        os.chown(home, 1001, 1001)
        for name in (".cache", ".local"):
            subprocess.run([*AS_1001, "ln", "-s", str(rootonly), str(home / name)], check=True)
        (base / "share" / "applications").mkdir(parents=True)
        (base / "share" / "applications" / "probe.desktop").write_text(
            "[Desktop Entry]\nType=Application\nName=Probe\nExec=/bin/true\n")
        bindir = base / "bin"                   # a yama-run on PATH, which the entry names
        bindir.mkdir()
        (bindir / "yama-run").write_text("#!/bin/sh\n")
        (bindir / "yama-run").chmod(0o755)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("XDG_")},
               "HOME": str(home), "XDG_DATA_DIRS": str(base / "share"),
               "PATH": f"{bindir}:{os.environ['PATH']}"}
        settle()                # (a plan is kept only of inputs older than a second)
        r = yama_run("-v", "--", "true", env=env)
        assert r.returncode == 0, r.stderr
        assert plan_said(r).endswith(f"not kept: {home}/.cache: not followed: a link of uid "
                                     "1001"), r.stderr
        denied = yama_run("--", *AS_1001, "/usr/bin/python3", "-c", DENIED, env=env)
        assert denied.returncode == 0 and "ptrace: denied" in denied.stderr, denied.stderr
        r = yama_run("--install-desktop", "probe", env=env)
        assert r.returncode == 125, r.stderr
        assert f"{home}/.local: not followed: a link of uid 1001" in r.stderr, r.stderr
        assert list(rootonly.iterdir()) == []
    finally:
        shutil.rmtree(base)


def test_a_users_own_cache_link_is_followed(tmp_path):
    """A ~/.cache that is the user's own link to its own directory (a
    dotfiles setup) keeps the plans there."""
    real = tmp_path / "real-cache"
    real.mkdir()
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / ".cache").symlink_to(real)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("XDG_")},
           "HOME": str(tmp_path / "home")}
    assert yama_run("--", "true", env=env).returncode == 0
    settle()
    r = yama_run("-v", "--", "true", env=env)
    assert r.returncode == 0 and FROM_CACHE in plan_said(r), r.stderr
    assert list((real / "yama-run" / "plans").glob("*.plan"))


def test_a_plan_directory_reached_through_a_symlink_is_not_read(tmp_path):
    cache = tmp_path / "cache"
    plan = cached_twice(cache, "--", "true")
    forged(plan)
    real = tmp_path / "elsewhere"
    plan.parent.rename(real)
    plan.parent.symlink_to(real)
    r = run(cache, "--", "true")
    assert r.returncode == 0, r.stderr
    assert "FORGED" not in r.stderr and FROM_CACHE not in plan_said(r)


def test_a_plan_file_that_is_a_symlink_is_not_read(tmp_path):
    cache = tmp_path / "cache"
    plan = cached_twice(cache, "--", "true")
    forged(plan)
    target = tmp_path / "plan-copy"
    plan.rename(target)
    plan.symlink_to(target)
    r = run(cache, "--", "true")
    assert "FORGED" not in r.stderr and FROM_CACHE not in plan_said(r)


def test_a_corrupt_plan_is_compiled_again(tmp_path):
    cache = tmp_path / "cache"
    plan = cached_twice(cache, "--", "true")
    plan.write_bytes(b"\x00not a plan")
    r = run(cache, "--", "true")
    assert r.returncode == 0, r.stderr
    assert f"{plan} is not a plan" in plan_said(r) and "kept in" in plan_said(r)


# -- the same filter and the same denials as a cold start -----------------------------------

PTRACE_ATTACH, PTRACE_DETACH, PTRACE_SECCOMP_GET_FILTER = 16, 17, 0x420c


def installed_filters(pid: int) -> list[bytes]:
    """Every seccomp filter of pid, newest first (PTRACE_SECCOMP_GET_FILTER)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    assert libc.ptrace(PTRACE_ATTACH, pid, None, None) == 0, os.strerror(ctypes.get_errno())
    try:
        os.waitpid(pid, 0x40000000)                 # __WALL
        filters = []
        for index in range(16):
            count = libc.ptrace(PTRACE_SECCOMP_GET_FILTER, pid, index, None)
            if count < 0:
                assert ctypes.get_errno() == errno.ENOENT, os.strerror(ctypes.get_errno())
                return filters
            buf = ctypes.create_string_buffer(count * 8)
            assert libc.ptrace(PTRACE_SECCOMP_GET_FILTER, pid, index, buf) == count
            filters.append(buf.raw)
        return filters
    finally:
        libc.ptrace(PTRACE_DETACH, pid, None, None)


def running(marker: str, timeout: float = 20) -> int:
    """The pid of the `sleep MARKER` under yama-run, once it has executed."""
    want = f"sleep\0{marker}\0".encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if Path(f"/proc/{entry}/cmdline").read_bytes() == want:
                        return int(entry)
                except OSError:
                    pass
        time.sleep(0.02)
    raise AssertionError(f"no sleep {marker} appeared")


def filters_of_a_run(cache: Path, marker: str, *args) -> tuple[list[bytes], str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    proc = subprocess.Popen([sys.executable, "-m", "sandbox.cli", "-v", *args, "--", "sleep",
                             marker], stderr=subprocess.PIPE, text=True, env=env)
    try:
        filters = installed_filters(running(marker))
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=30)
        for line in err.splitlines():
            if line.startswith("yama-run: plan:"):
                return filters, line
    raise AssertionError(err)


@requires_root
@pytest.mark.parametrize("args", [(), ("--set", "ptrace.scope=3"), ("--profile", "strict")])
def test_a_cached_start_installs_the_same_filter(tmp_path, args):
    cache = tmp_path / "cache"
    marker = f"{1000 + os.getpid() % 1000}.{len(args)}17"
    cold, said = filters_of_a_run(cache, marker, *args)
    assert "kept in" in said, said
    cached, said = filters_of_a_run(cache, marker, *args)
    assert FROM_CACHE in said, said
    assert cold and cached == cold


def outcome(result: subprocess.CompletedProcess) -> tuple:
    """What a user sees of a run, pids left out: status, the program's own
    error lines, yama-run's denials."""
    lines = [re.sub(r"\d+", "N", line) for line in result.stderr.splitlines()
             if ": denied " in line or line.startswith(("ln:", "strace:"))]
    return result.returncode, sorted(lines)


@requires_root
@requires_tool("strace")
@requires_tool("setpriv")
@pytest.mark.parametrize("args", [(), ("--set", "ptrace.scope=3")])
def test_a_cached_start_denies_what_a_cold_one_denies(tmp_path, args):
    """From their first calls (strace traces at once; ln as uid 1001 links a
    file it may not read): the same outcome from the cache, while the chain
    is still loading, as from a cold start."""
    cache = tmp_path / "cache"
    target = Path(f"/tmp/yama-plan-never-{os.getpid()}")
    command = ["strace", "-f", "-o", "/dev/null", "setpriv", "--reuid=1001", "--regid=1001",
               "--clear-groups", "ln", "/etc/shadow", str(target)]
    try:
        cold = run(cache, *args, "--", *command)
        cached = run(cache, *args, "--", *command)
    finally:
        target.unlink(missing_ok=True)
    assert "kept in" in plan_said(cold) and FROM_CACHE in plan_said(cached)
    assert cold.returncode != 0 and outcome(cold)[1], cold.stderr
    assert outcome(cached) == outcome(cold)


def test_the_plan_key_knows_every_launcher_the_lookup_sees_through():
    from sandbox import launchers, plan
    assert plan.LAUNCHERS == frozenset(launchers.LAUNCHERS)


def test_a_program_that_makes_the_supervisor_its_tracer_runs_from_the_cache(tmp_path, helper):
    """PTRACE_TRACEME makes the thread that forked the program its tracer:
    on the cached path too, that thread reaps it and lets its stops go."""
    probe = helper("hostile_probe")
    cache = tmp_path / "cache"
    for said in ("kept in", FROM_CACHE):
        r = run(cache, "--", probe, "traceme-raise", timeout=30)
        assert said in plan_said(r), r.stderr
        assert r.returncode == 3 and "HANDLED 1" in r.stdout, r


def file_size_limit(kib: int):
    """preexec_fn: `ulimit -f KIB` as bash sets it, soft and hard alike."""
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (kib * 1024, kib * 1024))
    return apply


def test_a_small_file_size_limit_starts_a_program_without_a_plan_with_that_limit(tmp_path):
    """Under `ulimit -f 4`, a command with no plan yet runs as natively and
    gets the user's limit, soft and hard, unchanged. The filter (about 5 KiB)
    was exported into a temporary file, which the limit cut; the cut program
    was loaded and refused (`cannot install the seccomp filter: Invalid
    argument`, 125): it is now exported into a pipe and loaded only whole.
    The plan's own file is cut by the same limit: not kept, said without a
    file name it does not have, and the next run compiles again."""
    cache = tmp_path / "cache"
    program = ["sh", "-c", "ulimit -f; ulimit -H -f"]
    native = subprocess.run(program, preexec_fn=file_size_limit(4), capture_output=True,
                            text=True, timeout=60)
    assert native.returncode == 0 and native.stdout == "8\n8\n", native   # (sh: 512-byte blocks)
    for _ in range(2):
        r = run(cache, "--", *program, preexec_fn=file_size_limit(4), timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stdout == native.stdout
        assert plan_said(r).endswith("; not kept: File too large"), r.stderr
