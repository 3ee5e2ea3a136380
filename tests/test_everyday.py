"""Everyday programs under yama-run, end to end, with yama-run started by
root and by an ordinary user (uid 1001, setpriv on yama-run itself): agents
that make themselves non-dumpable (ssh-agent, gpg-agent), a nested yama-run,
debuggers on their own children, git, make, pip into a venv, browsers with
their own sandboxes; and what a user sees of it: the setuid notice, denials
found later (--list-denials), one escaped line per first denial."""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest

from as_user import SYSTEM_PYTHON, UID, as_user  # noqa: F401  (fixture)
from conftest import YAMA_RUN, requires_root, requires_tool, tree_env, yama_run

REPO = Path(__file__).resolve().parent.parent
WHO = ("root", "user")


@pytest.fixture
def shared_dir():
    """A directory both root and uid 1001 may use (pytest's are 0700 root)."""
    d = Path(tempfile.mkdtemp(prefix="yama-run-everyday-"))
    d.chmod(0o755)
    os.chown(d, UID, UID)
    yield d
    subprocess.run(["rm", "-rf", str(d)])


class Runner:
    """yama-run started by root or by uid 1001, with HOME and the state
    directory (where denials are kept) in a directory of the test's."""

    def __init__(self, who: str, user, home: Path):
        self.who, self.user, self.home = who, user, home
        self.env = {"HOME": str(home), "XDG_STATE_HOME": str(home / ".state")}

    def run(self, *args, env=None, timeout=60, **kwargs) -> subprocess.CompletedProcess:
        env = {**self.env, **(env or {})}
        if self.who == "user":
            return self.user.run(*args, env=env, timeout=timeout, **kwargs)
        kwargs.setdefault("cwd", str(self.home))
        path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        return yama_run(*args, env={**os.environ, "PYTHONPATH": path, **env}, timeout=timeout,
                        **kwargs)

    def native(self, *cmd, env=None, **kwargs) -> subprocess.CompletedProcess:
        prefix = self.user and self.who == "user"
        cmd = [*(["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups"]
                 if prefix else []), *map(str, cmd)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                              env={**os.environ, **self.env, **(env or {})}, **kwargs)


@pytest.fixture(params=WHO)
def who(request, shared_dir):
    if request.param == "user":
        user = request.getfixturevalue("as_user")
    else:
        user = None
    home = shared_dir / "home"
    home.mkdir()
    if request.param == "user":
        os.chown(home, UID, UID)
    return Runner(request.param, user, home)


def as_owner(runner: Runner, path: Path) -> Path:
    if runner.who == "user":
        subprocess.run(["chown", "-R", f"{UID}:{UID}", str(path)], check=True)
    return path


# -- non-dumpable programs -----------------------------------------------------------

@pytest.fixture(scope="session")
def nodump_probe(helper):
    d = Path(tempfile.mkdtemp(prefix="yama-run-nodump-"))
    d.chmod(0o755)
    exe = d / "nodump_probe"
    shutil.copy2(helper("nodump_probe"), exe)
    exe.chmod(0o755)
    yield exe
    shutil.rmtree(d, ignore_errors=True)


def probe_dir(runner: Runner) -> Path:
    d = runner.home / "files"
    d.mkdir()
    (d / "f").write_text("hello\n")
    return as_owner(runner, d)


@pytest.mark.parametrize("backend", ["notify", "ptrace"])
def test_a_non_dumpable_program_opens_and_stats_files(who, nodump_probe, backend):
    """PR_SET_DUMPABLE 0, then every route of open, stat, access, a dirfd
    and AT_EMPTY_PATH: all served, as natively."""
    d = probe_dir(who)
    r = who.run("--backend", backend, nodump_probe, d, "f")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert all(line.endswith(" ok") for line in r.stdout.splitlines()), r.stdout
    assert who.native(nodump_probe, d, "f").returncode == 0


@pytest.mark.parametrize("backend", ["notify", "ptrace"])
def test_a_non_dumpable_program_of_another_uid_reaches_its_own_descriptors(
        as_user, nodump_probe, shared_dir, backend):  # noqa: F811
    """yama-run started by root, the program uid 1001's: the supervisor acts
    as the caller, which as itself may not search its own fd directory once
    non-dumpable (root's, 0500); the kernel lets a process reach its own
    /proc/self/fd/N, list its fd directory, read its fdinfo and its maps
    whoever owns them (EACCES before)."""
    runner = Runner("root", None, shared_dir / "home")
    runner.home.mkdir()
    os.chown(runner.home, UID, UID)
    d = probe_dir(Runner("user", as_user, runner.home))
    ids = ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups"]
    r = runner.run("--backend", backend, *ids, nodump_probe, d, "f", "own")
    assert r.returncode == 0, (r.stdout, r.stderr)
    lines = r.stdout.splitlines()
    assert sum("] own-" in line for line in lines) == 15, r.stdout
    assert all(line.endswith(" ok") for line in lines), r.stdout
    assert subprocess.run([*ids, str(nodump_probe), str(d), "f", "own"],
                          capture_output=True).returncode == 0


DROPPED = """
import os
os.setgroups([]); os.setresgid(1001, 1001, 1001); os.setresuid(1001, 1001, 1001)
fd = os.open("/etc/hostname", os.O_RDONLY)
for what, act in (("maps", lambda: open("/proc/self/maps").read(1)),
                  ("environ", lambda: open("/proc/self/environ", "rb").read(1)),
                  ("fd", lambda: open(f"/proc/self/fd/{fd}").read(1)),
                  ("fd list", lambda: os.listdir("/proc/self/fd")),
                  ("chdir fd", lambda: os.chdir("/proc/self/fd")),
                  ("cwd", lambda: os.readlink("/proc/self/cwd"))):
    try:
        act(); print(what, "ok")
    except OSError as e:
        print(what, e.strerror)
"""


def test_root_dropping_to_another_uid_keeps_its_own_proc_entries(shared_dir):
    """Root that drops to uid 1001 is non-dumpable (its /proc entries root's):
    it still reads its own maps and fd directory, and not its environ (0400,
    root's), as natively (EACCES for maps and fd before, under yama-run)."""
    native = subprocess.run([sys.executable, "-c", DROPPED], capture_output=True, text=True,
                            cwd=shared_dir, timeout=60)
    assert native.stdout.split("\n")[:2] == ["maps ok", "environ Permission denied"], native
    r = Runner("root", None, shared_dir).run("--set", "symlinks.protected=1",
                                             sys.executable, "-c", DROPPED)
    assert r.stdout == native.stdout, (r.stdout, r.stderr)


OWN_MAP_FILES = """
import ctypes, os
ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)            # PR_SET_DUMPABLE 0
try:
    names = os.listdir("/proc/self/map_files")
    print("map_files list", "ok" if names else "empty")
except OSError as e:
    print("map_files list", e.strerror)
"""


@pytest.mark.parametrize("ids", [[], ["setpriv", f"--reuid={UID}", f"--regid={UID}",
                                      "--clear-groups"]], ids=["root", "uid-1001"])
def test_a_non_dumpable_process_lists_its_own_map_files(shared_dir, ids):
    """A non-dumpable process lists its own /proc/self/map_files, as
    natively: the kernel lets its thread group open the directory whoever
    owns it (proc_fd_permission) and lists it on a ptrace check the process
    passes on itself; only following an entry wants CAP_CHECKPOINT_RESTORE.
    Under yama-run started by root, the program uid 1001's: EACCES before
    (the acting thread, not of its thread group, was refused the directory,
    root's 0500, and the gate did not open it as the supervisor as it opens
    the fd directory)."""
    cmd = [*ids, sys.executable, "-c", OWN_MAP_FILES]
    native = subprocess.run(cmd, capture_output=True, text=True, cwd=shared_dir, timeout=60)
    assert native.stdout == "map_files list ok\n", native
    r = Runner("root", None, shared_dir).run(*cmd)
    assert r.stdout == native.stdout, (r.stdout, r.stderr)


OTHERS_FDS = """
import os, ctypes, time
r, w = os.pipe()
child = os.fork()
if child == 0:
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)        # non-dumpable: its fd directory is root's
    os.write(w, b"x")
    time.sleep(30)
    os._exit(0)
os.read(r, 1)
for what, act in (("open", lambda: os.open(f"/proc/{child}/fd/0", os.O_RDONLY)),
                  ("list", lambda: os.listdir(f"/proc/{child}/fd")),
                  ("fdinfo", lambda: open(f"/proc/{child}/fdinfo/0").read())):
    try:
        act(); print(what, "ok")
    except OSError as e:
        print(what, e.strerror)
os.kill(child, 9)
"""


def test_another_process_s_fd_directory_stays_refused(as_user, shared_dir):  # noqa: F811
    """The exemption is a process's own: uid 1001's non-dumpable child's fd
    directory is refused to it, under yama-run started by root as natively."""
    ids = ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups"]
    native = subprocess.run([*ids, sys.executable, "-c", OTHERS_FDS], capture_output=True,
                            text=True, cwd=shared_dir, timeout=60)
    assert native.stdout.split() == ["open", "Permission", "denied", "list", "Permission",
                                     "denied", "fdinfo", "Permission", "denied"], native
    runner = Runner("root", None, shared_dir)
    r = runner.run(*ids, sys.executable, "-c", OTHERS_FDS)
    assert r.stdout == native.stdout, (r.stdout, r.stderr)


USERNS_CHOWN = """
set -e
cd "$1"
touch x y z
chown 0:0 x && echo "chown 0:0 ok"
chown 1 y 2>/dev/null || echo "chown 1: $?"
chgrp 0 z && echo "chgrp 0 ok"
stat -c '%u:%g %n' x z
mkdir out
tar -xf a.tar -C out && echo "tar ok"
stat -c '%u:%g %n' out/member
"""


@requires_tool("unshare")
def test_root_of_its_own_user_namespace_chowns_its_files(as_user, shared_dir):  # noqa: F811
    """uid 1001 in `unshare -r` (its 0 is our 1001) gives its files to its own
    root, as tar -x of an archive of root's does: the ids are the caller's
    namespace's, taken into ours as the kernel takes them (EPERM before: 0
    was taken for our root), and an id it does not map is EINVAL."""
    work = shared_dir / "ns"
    work.mkdir()
    member = work / "member"
    member.write_text("x\n")
    subprocess.run(["tar", "--owner=0", "--group=0", "-cf", str(work / "a.tar"), "-C",
                    str(work), "member"], check=True)
    member.unlink()
    subprocess.run(["chown", "-R", f"{UID}:{UID}", str(work)], check=True)
    ids = ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups"]
    cmd = [*ids, "unshare", "-r", "sh", "-c", USERNS_CHOWN, "sh", str(work)]
    native = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert native.returncode == 0, native.stderr
    assert native.stdout.split("\n")[:4] == ["chown 0:0 ok", "chown 1: 1", "chgrp 0 ok",
                                              "0:0 x"], native.stdout
    subprocess.run(["sh", "-c", f"cd {work} && rm -rf x y z out"], check=True)
    r = Runner("root", None, shared_dir).run("--set", "symlinks.protected=1", *cmd)
    assert (r.returncode, r.stdout) == (0, native.stdout), r.stderr


NESTED_USERNS = """
import ctypes, os, sys
f = sys.argv[1]
open(f, "w").close()
def chown(uid):
    try:
        os.chown(f, uid, -1); return "ok"
    except OSError as e:
        return e.strerror
print("outer", chown(0), chown(5))
assert ctypes.CDLL(None, use_errno=True).unshare(0x10000000) == 0    # CLONE_NEWUSER
open("/proc/self/uid_map", "w").write("5 0 1")                       # its 5 is the outer 0
print("nested", chown(0), chown(5), os.stat(f).st_uid)
"""


@requires_tool("unshare")
def test_ids_follow_the_caller_into_a_nested_user_namespace(shared_dir):
    """A caller in a namespace of its own that enters another below it: its
    ids are the new namespace's (the maps of the first were kept: 0 taken
    for 1001, 5 refused; and a map not yet written, its gid_map, refused
    every chown)."""
    f = shared_dir / "nested"
    ids = ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups"]
    cmd = [*ids, "unshare", "-r", "/usr/bin/python3", "-c", NESTED_USERNS, str(f)]
    native = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert native.stdout.splitlines() == ["outer ok Invalid argument",
                                          "nested Invalid argument ok 5"], native
    f.unlink()
    r = Runner("root", None, shared_dir).run("--set", "symlinks.protected=1", *cmd)
    assert r.stdout == native.stdout, (r.stdout, r.stderr)


USERNS_ACL = """
import os, struct, sys
def acl(named):     # ACL v2: user::rw-, user:ID:rw-, group::r--, mask::rw-, other::r--
    e = [(1, 6, 0xffffffff), (2, 6, named), (4, 4, 0xffffffff), (16, 6, 0xffffffff),
         (32, 4, 0xffffffff)]
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *x) for x in e)
for named in (5, 0):
    name = f"{sys.argv[1]}/acl{named}"
    open(name, "w").close()
    try:
        os.setxattr(name, "system.posix_acl_access", acl(named))
        v = os.getxattr(name, "system.posix_acl_access")
        print(named, "set, reads", struct.unpack_from("<HHI", v, 12)[2])
    except OSError as e:
        print(named, e.strerror)
"""


@requires_tool("unshare")
def test_acl_ids_of_a_user_namespace_are_its_own(as_user, shared_dir):  # noqa: F811
    """yama-run started by uid 1001, the program in `unshare -r`: an ACL's
    named ids are the caller's namespace's both ways (user:5, which it does
    not map, is EINVAL; before, real uid 5 was granted access), as natively."""
    work = shared_dir / "acl"
    work.mkdir()
    os.chown(work, UID, UID)
    script = shared_dir / "acl.py"
    script.write_text(USERNS_ACL)
    script.chmod(0o644)
    cmd = ["unshare", "-r", "/usr/bin/python3", str(script), str(work)]
    ids = ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups"]
    native = subprocess.run([*ids, *cmd], capture_output=True, text=True, timeout=60)
    if "Operation not supported" in native.stdout:
        pytest.skip(f"{work}'s filesystem has no POSIX ACLs")
    assert native.stdout.splitlines() == ["5 Invalid argument", "0 set, reads 0"], native
    assert struct.unpack_from("<HHI", os.getxattr(work / "acl0", "system.posix_acl_access"),
                              12)[2] == UID
    subprocess.run(["rm", "-f", str(work / "acl5"), str(work / "acl0")], check=True)
    runner = Runner("user", as_user, shared_dir / "home")
    runner.home.mkdir()
    os.chown(runner.home, UID, UID)
    r = runner.run("--set", "symlinks.protected=1", *cmd)
    assert r.stdout == native.stdout, (r.stdout, r.stderr)
    assert struct.unpack_from("<HHI", os.getxattr(work / "acl0", "system.posix_acl_access"),
                              12)[2] == UID


def test_without_the_user_namespace_it_fails_closed_and_says_why(as_user, nodump_probe,  # noqa: F811
                                                                 shared_dir):
    """--userns=never, started by an ordinary user: the supervisor cannot read
    a non-dumpable caller, so its calls fail (EPERM), and -v says why."""
    runner = Runner("user", as_user, shared_dir / "home")
    runner.home.mkdir()
    os.chown(runner.home, UID, UID)
    d = probe_dir(runner)
    r = runner.run("-v", "--userns", "never", nodump_probe, d, "f")
    assert r.returncode == 1
    assert "open EPERM" in r.stdout and "stat EPERM" in r.stdout
    assert "non-dumpable programs cannot be served" in r.stderr


def test_each_call_that_fails_closed_so_is_a_denial_said_and_kept(as_user, nodump_probe,  # noqa: F811
                                                                 shared_dir):
    """--userns=never, started by an ordinary user, without -v: each call of
    the non-dumpable probe that fails closed (EPERM) is a denial of the
    gate's, hook caller_unreachable, in the audit log with the probe's name,
    and the first of the run is said on stderr. Before, nothing was said or
    kept: its opens failed silently."""
    runner = Runner("user", as_user, shared_dir / "home")
    runner.home.mkdir()
    os.chown(runner.home, UID, UID)
    d = probe_dir(runner)
    log = runner.home / "audit.jsonl"
    r = runner.run("--userns", "never", "--audit-log", log, nodump_probe, d, "f")
    assert r.returncode == 1
    failed = [line.split()[0] for line in r.stdout.splitlines() if line.endswith(" EPERM")]
    assert "open" in failed and "stat" in failed, r.stdout
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records and {(rec["module"], rec["hook"], rec["errno"], rec["comm"])
                        for rec in records} == {("gate", "caller_unreachable", "EPERM",
                                                 "nodump_probe")}, records
    assert len(records) >= len(failed), (records, r.stdout)
    said = [line for line in r.stderr.splitlines() if "caller_unreachable" in line or
            "it is not dumpable" in line]
    assert len(said) == 1 and said[0].startswith("yama-run: gate: denied "), r.stderr


@pytest.mark.parametrize("yama, wanted", [(None, True), ("0\n", True), ("1\n", False),
                                           ("2\n", False), ("3\n", False)])
def test_no_user_namespace_where_the_host_s_yama_restricts_ptrace(tmp_path, monkeypatch,
                                                                  yama, wanted):
    """Every process of a user namespace's owner holds CAP_SYS_PTRACE over it,
    and Yama's scopes 1 and 2 let such a holder trace: in a namespace of ours
    every process of the user could trace the sandbox where the host's Yama
    lets none but ancestors. An unprivileged run makes none there (this VM has
    no Yama: the decision is tried against files of the test's)."""
    from sandbox import spawn
    scope = tmp_path / "ptrace_scope"
    if yama is not None:
        scope.write_text(yama)
    monkeypatch.setattr(spawn, "YAMA_SCOPE", str(scope))
    monkeypatch.setattr(spawn, "has_cap_sys_ptrace", lambda: False)
    wants, why_not = spawn.userns_plan("auto")
    assert wants is wanted
    assert spawn.userns_plan("never")[0] is False
    assert bool(why_not) is not wanted
    if why_not:
        assert why_not.startswith(f"no user namespace (the host's Yama ptrace_scope is {yama.strip()}")


# -- agents and daemons -----------------------------------------------------------------

def agent_env(stdout: str) -> dict:
    env = {}
    for part in stdout.replace("\n", " ").split(";"):
        key, eq, value = part.strip().partition("=")
        if eq and key in ("SSH_AUTH_SOCK", "SSH_AGENT_PID"):
            env[key] = value
    return env


@requires_tool("ssh-agent")
def test_ssh_agent_returns_at_once_and_serves_ssh_add(who):
    """`eval $(yama-run ssh-agent -s)` returns with the agent's environment
    while the agent runs on, supervised; ssh-add (under yama-run too) lists,
    adds and lists again through it."""
    r = who.run("ssh-agent", "-s", timeout=15)
    assert r.returncode == 0, r.stderr
    env = agent_env(r.stdout)
    assert set(env) == {"SSH_AUTH_SOCK", "SSH_AGENT_PID"}, r.stdout
    try:
        listed = who.run("ssh-add", "-l", env=env)
        assert (listed.returncode, listed.stdout) == (1, "The agent has no identities.\n")
        key = who.home / "id_test"
        made = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                               "yama-run-test", "-f", str(key)], capture_output=True, text=True)
        assert made.returncode == 0, made.stderr
        as_owner(who, key)
        added = who.run("ssh-add", key, env=env)
        assert added.returncode == 0, added.stderr
        listed = who.run("ssh-add", "-l", env=env)
        assert listed.returncode == 0 and "yama-run-test" in listed.stdout
    finally:
        os.kill(int(env["SSH_AGENT_PID"]), 15)


@requires_tool("gpg")
def test_gpg_generates_a_key_in_a_fresh_home(who):
    """gpg starts gpg-agent (non-dumpable, a daemon): the key is made, listed,
    and yama-run returned while the agent lives on."""
    gnupg = who.home / "gnupg"
    gnupg.mkdir(mode=0o700)
    as_owner(who, gnupg)
    env = {"GNUPGHOME": str(gnupg)}
    try:
        r = who.run("gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
                    "--quick-gen-key", "Yama Run <test@example.org>", "default", "default",
                    "never", env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        assert "No agent running" not in r.stderr
        r = who.run("gpg", "--list-secret-keys", env=env)
        assert r.returncode == 0 and "Yama Run <test@example.org>" in r.stdout, r.stderr
    finally:
        who.native("gpgconf", "--kill", "gpg-agent", env=env)


# -- yama-run inside yama-run -----------------------------------------------------------

def test_a_nested_yama_run_through_a_wrapper_named_like_the_program(who):
    """A wrapper script named cat that runs yama-run /bin/cat: the inner
    yama-run (ptrace backend: the outer holds the listener) serves it."""
    bindir = who.home / "bin"
    bindir.mkdir()
    python = sys.executable if who.who == "root" else "/usr/bin/python3"
    wrapper = bindir / "cat"
    wrapper.write_text(f"#!/bin/sh\nexec {python} -m sandbox.cli /bin/cat \"$@\"\n")
    wrapper.chmod(0o755)
    env = {"PYTHONPATH": str(REPO)} if who.who == "root" else {}
    data = who.home / "data"
    data.write_text("nested\n")
    r = who.run(wrapper, data, env=env)
    assert (r.returncode, r.stdout) == (0, "nested\n"), r.stderr


# -- tools ---------------------------------------------------------------------------------

@requires_tool("gdb")
def test_gdb_runs_its_own_child(who):
    r = who.run("gdb", "-nx", "-batch", "-ex", "run", "--args", "/bin/sh", "-c", "exit 7",
                timeout=120)
    assert "exited with code 07" in r.stdout, (r.stdout, r.stderr)


MOUNT_PROC = """
for what in "stat:cat /proc/self/stat" "list:ls /proc" "maps:cat /proc/self/maps" \\
            "init-status:cat /proc/1/status" "init-environ:cat /proc/1/environ" \\
            "init-fd:ls /proc/1/fd"; do
    if ${what#*:} >/dev/null 2>&1; then echo "${what%%:*} ok"; else echo "${what%%:*} refused"; fi
done
echo "ps $(ps -e | wc -l)"
"""


def unshare_pid(runner: Runner) -> list[str]:
    """A pid namespace of the program's own with a /proc of it mounted (a
    user namespace too for uid 1001, which may not mount otherwise)."""
    return ["unshare", "-rpf" if runner.who == "user" else "-pf", "--mount-proc"]


@requires_tool("unshare")
@requires_tool("ps")
def test_a_proc_of_the_program_s_own_pid_namespace_is_read_as_natively(who):
    """`unshare -pf --mount-proc` (bwrap --proc alike): the /proc mounted
    there shows the program's own pid namespace, which the gate proves from
    the caller's own process (its number there names a task of its
    namespace, at its level) and maps to ours: listing it, /proc/self, its
    own maps, init's status, environ and fd directory, and ps, as natively.
    Before, the gate could not prove any of it: EACCES for every one, ps
    empty, and nothing said."""
    cmd = [*unshare_pid(who), "sh", "-c", MOUNT_PROC]
    native = who.native(*cmd)
    assert native.stdout.splitlines()[:6] == [
        f"{what} ok" for what in ("stat", "list", "maps", "init-status", "init-environ",
                                  "init-fd")], native
    r = who.run(*cmd)
    assert r.stdout == native.stdout, (r.stdout, r.stderr)
    assert "yama-run:" not in r.stderr, r.stderr


NESTED_PID = """
cat /proc/1/status >/dev/null && echo "status ok"
cat /proc/1/maps >/dev/null && echo "maps ok"
"""


@requires_root
@requires_tool("unshare")
def test_an_unprovable_proc_is_refused_and_said(shared_dir):
    """A /proc of a pid namespace that is neither ours nor the caller's own
    (mounted for the namespace above the caller's): which process an entry
    is of cannot be told, so what the kernel checks against that process
    is refused (fail closed; natively allowed), what the gate allows of
    any process is read, and the refusal is said, as a denial of the gate
    (it was silent)."""
    cmd = ["unshare", "-pmf", "--mount-proc", "unshare", "-pf", "sh", "-c", NESTED_PID]
    native = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert native.stdout == "status ok\nmaps ok\n", native
    r = Runner("root", None, shared_dir).run(*cmd)
    assert r.stdout == "status ok\n", (r.stdout, r.stderr)
    assert "Permission denied" in r.stderr, r.stderr
    assert "yama-run: gate: denied openat '/proc/1/maps'" in r.stderr, r.stderr


@requires_tool("strace")
def test_strace_follows_its_own_children(who):
    r = who.run("strace", "-f", "-e", "trace=execve", "/bin/sh", "-c", "/bin/true; exit 5")
    assert r.returncode == 5, r.stderr
    assert 'execve("/bin/true"' in r.stderr


@requires_tool("git")
def test_git_init_commit_log(who):
    (who.home / "repo").mkdir()
    repo = as_owner(who, who.home / "repo")
    env = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_AUTHOR_NAME": "Y", "GIT_AUTHOR_EMAIL": "y@x",
           "GIT_COMMITTER_NAME": "Y", "GIT_COMMITTER_EMAIL": "y@x"}
    script = ("git init -q . && echo hi > f && git add f && git commit -qm first && "
              "git log --format=%s")
    r = who.run("sh", "-c", script, env=env, cwd=str(repo))
    assert (r.returncode, r.stdout) == (0, "first\n"), r.stderr


@requires_tool("make")
@requires_tool("gcc")
def test_make_builds_with_gcc(who):
    src = who.home / "src"
    src.mkdir()
    (src / "hello.c").write_text('#include <stdio.h>\nint main(void){puts("built");return 0;}\n')
    (src / "Makefile").write_text("hello: hello.c\n\tgcc -o hello hello.c\n")
    as_owner(who, src)
    r = who.run("make", "-C", src, "hello")
    assert r.returncode == 0, r.stderr
    assert subprocess.run([src / "hello"], capture_output=True, text=True).stdout == "built\n"


CLOSED_WHEN_CLOSE_RETURNS = r"""
import ctypes, os, sys
d = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
watch = libc.inotify_init1(os.O_NONBLOCK)
libc.inotify_add_watch(watch, d.encode(), 0x8)          # IN_CLOSE_WRITE
late = busy = 0
for i in range(300):
    path = f"{d}/s{i % 4}"
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o755)
    os.write(fd, b"#!/bin/sh\nexit 0\n")
    os.close(fd)
    try:
        os.read(watch, 4096)
    except BlockingIOError:
        late += 1
    pid = os.fork()
    if pid == 0:
        try:
            os.execv(path, [path])
        except OSError as e:
            os._exit(100 + e.errno)
    busy += os.waitpid(pid, 0)[1] >> 8 == 100 + 26       # ETXTBSY
print(late, busy)
"""


def test_a_file_is_closed_when_its_close_returns(who):
    """An open the supervisor performs is the caller's once answered; the
    supervisor's own copy was closed only after the caller was woken (the
    answer went with the descriptor), so a file just written and closed was
    still open for writing for some microseconds: its exec got ETXTBSY, and
    inotify's IN_CLOSE_WRITE arrived after close() had returned (tens in 300
    on the old code). Natively neither happens."""
    d = as_owner(who, who.home)
    r = who.run("--", SYSTEM_PYTHON, "-c", CLOSED_WHEN_CLOSE_RETURNS, str(d))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "0"], r.stdout


def make_wheel(where: Path) -> Path:
    """A pure-Python wheel, made by hand: nothing to fetch."""
    wheel = where / "yamademo-1.0-py3-none-any.whl"
    files = {"yamademo/__init__.py": "GREETING = 'from a local wheel'\n",
             "yamademo-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: yamademo\n"
                                                "Version: 1.0\n",
             "yamademo-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\n"
                                             "Root-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{name},,\n" for name in files) + "yamademo-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
        z.writestr("yamademo-1.0.dist-info/RECORD", record)
    return wheel


def test_venv_and_pip_install_a_local_wheel(who):
    python = sys.executable if who.who == "root" else "/usr/bin/python3"
    work = who.home / "py"
    work.mkdir()
    wheel = make_wheel(work)
    as_owner(who, work)
    venv = work / "venv"
    env = {"PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    script = (f"{python} -m venv {venv} && {venv}/bin/pip install -q --no-deps {wheel} && "
              f"{venv}/bin/python -c 'import yamademo; print(yamademo.GREETING)'")
    r = who.run("sh", "-c", script, env=env, timeout=180)
    assert (r.returncode, r.stdout) == (0, "from a local wheel\n"), r.stderr


# -- browsers with their own sandboxes, started by an ordinary user -------------------------

@pytest.mark.parametrize("browser", ["chromium", "firefox-esr"])
def test_browser_screenshot_started_by_an_ordinary_user(as_user, shared_dir, browser):  # noqa: F811
    """Chromium with its own (user-namespace) sandbox, and Firefox with its
    own: both render the page inside ours, nothing denied."""
    if shutil.which(browser) is None:
        pytest.skip(f"needs {browser}")
    from test_browsers import BROWSER_TIMEOUT, assert_screenshot, denials
    runner = Runner("user", as_user, shared_dir / "home")
    runner.home.mkdir()
    page = runner.home / "page.html"
    page.write_text('<html><body style="margin:0;background:#cc3333"><h1>yama-run</h1>'
                    '</body></html>')
    as_owner(runner, runner.home)
    shot, log = runner.home / "shot.png", runner.home / "audit.jsonl"
    if browser == "chromium":
        args = ["--headless", "--disable-gpu", "--no-first-run", "--disable-quic",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", f"--user-data-dir={runner.home / 'data'}",
                f"--screenshot={shot}", page.as_uri()]
    else:
        args = ["--headless", "--no-remote", "--profile", str(runner.home / "ff"),
                "--screenshot", str(shot), page.as_uri()]
        (runner.home / "ff").mkdir()
        as_owner(runner, runner.home / "ff")
    r = runner.run("--audit-log", log, browser, *args, timeout=BROWSER_TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert_screenshot(shot)
    assert denials(log) == []


# -- setuid programs ------------------------------------------------------------------------

@requires_root
def test_setuid_setgid_and_file_capability_programs_are_noticed(tmp_path):
    """Each runs without its privilege (no_new_privs): -v and the audit log
    say so, once per exec, with the path and the privilege lost."""
    tools = Path(tempfile.mkdtemp(prefix="yama-run-suid-"))
    try:
        for name, mode in (("suid", 0o4755), ("sgid", 0o2755), ("plain", 0o755)):
            shutil.copy2("/bin/true", tools / name)
            os.chmod(tools / name, mode)
        shutil.copy2("/bin/true", tools / "fcaps")
        have_setcap = shutil.which("setcap") is not None and subprocess.run(
            ["setcap", "cap_net_raw+ep", str(tools / "fcaps")]).returncode == 0
        log = tmp_path / "audit.jsonl"
        script = "; ".join(str(tools / n) for n in ("suid", "sgid", "plain", "fcaps"))
        r = yama_run("-v", "--audit-log", log, "sh", "-c", script)
        assert r.returncode == 0, r.stderr
        notices = [json.loads(line) for line in log.read_text().splitlines()]
        notices = {Path(n["path"]).name: n["privilege"] for n in notices
                   if n["action"] == "exec-unprivileged"}
        expected = {"suid": ["setuid 0"], "sgid": ["setgid"]}
        if have_setcap:
            expected["fcaps"] = ["file capabilities"]
        assert notices == expected
        assert f"{tools}/suid (setuid 0) runs without its privilege under yama-run" in r.stderr
    finally:
        shutil.rmtree(tools, ignore_errors=True)


# -- denials found later, and what the terminal shows ---------------------------------------

@pytest.fixture
def sticky_link():
    """uid 1002's symlink in a sticky world-writable directory: following it
    is a symlinks denial for anyone else (root too)."""
    base = Path(tempfile.mkdtemp(prefix="yama-run-denial-"))
    base.chmod(0o755)
    sticky = base / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    (base / "target").write_text("x\n")
    (sticky / "link").symlink_to(base / "target")
    os.lchown(sticky / "link", 1002, 1002)
    yield sticky / "link"
    subprocess.run(["rm", "-rf", str(base)])


def state_env(tmp_path) -> dict:
    return {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}


def test_denials_are_kept_and_listed_later(tmp_path, sticky_link):
    """No -v, no --audit-log: the first denial prints one line naming the
    module and how to see more; the denial is in the state file;
    --list-denials shows it; --quiet prints nothing but still keeps it."""
    env = state_env(tmp_path)
    r = yama_run("cat", sticky_link, env=env)
    assert r.returncode == 1
    lines = [line for line in r.stderr.splitlines() if line.startswith("yama-run:")]
    assert len(lines) == 1 and lines[0].startswith("yama-run: symlinks: denied ")
    assert "yama-run --list-denials" in lines[0]
    kept = tmp_path / "state" / "yama-run" / "denials.jsonl"
    [record] = [json.loads(line) for line in kept.read_text().splitlines()]
    assert (record["module"], record["program"], record["errno"]) == ("symlinks", "cat", "EACCES")
    r = yama_run("--quiet", "cat", sticky_link, env=env)
    assert r.returncode == 1 and "yama-run:" not in r.stderr
    assert len(kept.read_text().splitlines()) == 2
    listed = yama_run("--list-denials", env=env)
    assert listed.returncode == 0
    assert listed.stdout.count("cat [default] symlinks: denied") == 2, listed.stdout
    assert str(kept) in listed.stdout


def test_a_flood_of_denials_is_rate_limited(tmp_path, sticky_link):
    """2,000 denials in a second: at most the burst and the rate are written,
    and the rest is counted in one record; one line on the terminal."""
    from sandbox.journal import BURST, RATE
    env = state_env(tmp_path)
    script = f"for i in $(seq 2000); do cat {sticky_link} 2>/dev/null; done; true"
    start = time.monotonic()
    r = yama_run("sh", "-c", script, env=env, timeout=120)
    took = time.monotonic() - start
    assert r.returncode == 0
    assert len([ln for ln in r.stderr.splitlines() if ln.startswith("yama-run:")]) == 1
    records = [json.loads(line) for line in
               (tmp_path / "state" / "yama-run" / "denials.jsonl").read_text().splitlines()]
    denied = [rec for rec in records if rec["action"] == "deny"]
    assert len(denied) <= BURST + RATE * took + 1
    [summary] = [rec for rec in records if rec["action"] == "not-recorded"]
    assert summary["count"] == 2000 - len(denied)


def test_the_file_is_rotated(tmp_path, monkeypatch):
    """Past MAX_BYTES the file becomes denials.jsonl.1 (the older one
    dropped): at most twice MAX_BYTES on disk."""
    from sandbox import journal
    monkeypatch.setattr(journal, "MAX_BYTES", 4096)
    sink = journal.FileJournal(str(tmp_path / "yama-run"))
    for i in range(200):
        sink.write({"n": i, "message": "x" * 50})
    sizes = [p.stat().st_size for p in (tmp_path / "yama-run").iterdir()]
    assert len(sizes) == 2 and all(s <= 4096 for s in sizes)
    assert sink.recent(5)[-1]["n"] == 199


JOURNAL_UNDER_A_FILE_SIZE_LIMIT = r"""
import errno, os, resource, signal, sys
from sandbox import journal
sink = journal.FileJournal(sys.argv[1])
sink.write({"n": 1})
path = os.path.join(sys.argv[1], "denials.jsonl")
size = os.path.getsize(path)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 20, resource.RLIM_INFINITY))
try:
    sink.write({"n": 2, "message": "x" * 100})
    cut = "written"
except OSError as e:
    cut = errno.errorcode[e.errno]
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
sink.write({"n": 3})
print(cut, [r["n"] for r in sink.recent(10)])
"""


def test_a_denial_cut_by_the_file_size_limit_takes_no_other_with_it(tmp_path):
    """The supervisor has the user's RLIMIT_FSIZE: a record written past it
    was cut short, unseen, and the next record appended to the cut line, so
    that both were skipped when read. The cut is taken back and counted
    (EFBIG, said on stderr by the audit); the next record is kept."""
    r = subprocess.run([sys.executable, "-c", JOURNAL_UNDER_A_FILE_SIZE_LIMIT,
                        str(tmp_path / "yama-run")], capture_output=True, text=True,
                       timeout=60, env=tree_env())
    assert r.stdout.split(None, 1) == ["EFBIG", "[1, 3]\n"], r.stdout + r.stderr


def test_journald_fields(tmp_path, monkeypatch):
    """The native journal protocol, sent to a socket of ours: MESSAGE,
    SYSLOG_IDENTIFIER and each field as YAMA_RUN_*; a value with a newline
    in the length-prefixed form (no field can be forged)."""
    import socket
    from sandbox import journal
    path = tmp_path / "journal.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    monkeypatch.setattr(journal, "JOURNAL_SOCKET", str(path))
    journal.SystemJournal().write({"message": "m", "module": "ptrace", "comm": "a\nB=forged",
                                   "pid": 42})
    data = server.recv(65536)
    assert b"MESSAGE=m\n" in data and b"SYSLOG_IDENTIFIER=yama-run\n" in data
    assert b"YAMA_RUN_MODULE=ptrace\n" in data and b"YAMA_RUN_PID=42\n" in data
    assert b"YAMA_RUN_COMM\n" + (10).to_bytes(8, "little") + b"a\nB=forged\n" in data
    assert b"\nB=forged\n" not in data.replace(b"a\nB=forged", b"")


@pytest.mark.skipif(not os.path.exists("/run/systemd/journal/socket"),
                    reason="no systemd-journald here: denials go to the state file")
def test_denials_reach_the_journal(sticky_link):
    tag = f"yama-run-test-{os.getpid()}"
    r = yama_run("cat", sticky_link, env={**os.environ, "YAMA_RUN_TEST_TAG": tag})
    assert r.returncode == 1
    time.sleep(1)
    listed = yama_run("--list-denials")
    assert "symlinks: denied" in listed.stdout


def test_control_characters_cannot_forge_lines(tmp_path, sticky_link):
    """A program named with an escape sequence and a newline (its comm):
    yama-run's -v line and first-denial line come out escaped, one line each.
    (The program's own messages are silenced: every line left is ours.)"""
    evil = tmp_path / "\x1b[31m\nyama-run: forged"
    shutil.copy2("/bin/cat", evil)
    env = state_env(tmp_path)
    for flags in ([], ["-v"]):
        r = yama_run(*flags, "sh", "-c", '"$0" "$1" 2>/dev/null', evil, sticky_link, env=env)
        assert r.returncode == 1
        assert "\x1b" not in r.stderr
        assert all(line.startswith("yama-run: ") for line in r.stderr.splitlines()), r.stderr
        assert "\\e[31m\\nyama-run:" in r.stderr
    listed = yama_run("--list-denials", env=env)
    assert "\x1b" not in listed.stdout and "\\e[31m\\nyama-run:" in listed.stdout


# -- the profile seen through launchers ------------------------------------------------------

@pytest.mark.parametrize("launcher", [
    ["env", "MOZ_HEADLESS=1"], ["nice"], ["nice", "-n", "5"], ["env", "-i", "PATH=/usr/bin",
                                                                "nice", "-5"],
    ["timeout", "-s", "KILL", "30"], ["stdbuf", "-oL"], ["setsid", "-w"], ["nohup"],
    ["ionice", "-c", "3"], ["taskset", "-c", "0"], ["chrt", "-o", "0"],
    ["env", "-S", "A=1 nice -n 1"]])
def test_the_profile_is_found_through_launchers(launcher):
    r = yama_run("-v", *launcher, "make", "--version")
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stderr.splitlines() if ln.startswith("yama-run: profile "))
    assert line.startswith("yama-run: profile make (")
    assert "named make (started by " in line


@pytest.mark.parametrize("who", ["root", "1001"])
def test_a_program_may_ask_whether_its_parent_lives(who):
    """kill(getppid(), 0), the test of a watchdog that lives while its
    parent lives: the main program's parent is the supervisor, and the
    signal 0 to it was refused (EPERM, said with -v only), so such a
    program quit at once. Signal 0 sends nothing: answered as the kernel
    answers the caller (0 for yama-run's own user; EPERM for uid 1001
    under root's yama-run, as natively for a root parent)."""
    script = ("import os\ntry:\n    os.kill(os.getppid(), 0)\n    print('alive')\n"
              "except OSError as e:\n    print(e.errno)\n")
    if who == "root":
        r = yama_run("--", sys.executable, "-c", script)
        assert r.returncode == 0 and r.stdout == "alive\n", r
    else:
        if os.geteuid() != 0:
            pytest.skip("needs root to run the program as uid 1001")
        r = yama_run("--", "setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups",
                     SYSTEM_PYTHON, "-c", script)
        assert r.returncode == 0 and r.stdout == "1\n", r       # EPERM, as natively


@requires_root
def test_the_fronts_number_is_anyones_once_the_front_has_ended(helper, tmp_path):
    """The front (the process the shell waits on) ends with the main
    program, while the supervisor serves what it left behind; its number
    stayed protected, so a child that took it (ns_last_pid) could not be
    signalled by its own parent (EPERM) nor its environ read (EACCES),
    where natively both go on (a review)."""
    out = tmp_path / "out"
    r = yama_run("--", helper("front_reuse"), out)
    assert r.returncode == 0, r
    deadline = time.monotonic() + 30
    while "done=1" not in (out.read_text() if out.exists() else ""):
        assert time.monotonic() < deadline, out.read_text() if out.exists() else "no output"
        time.sleep(0.1)
    facts = dict(line.split("=", 1) for line in out.read_text().split())
    if facts.get("took") != "1":
        pytest.skip("no child of the leftover took the front's number")
    assert facts["kill"] == "OK" and facts["environ"] == "OK", facts
