"""Running sandboxes, end to end: the listing (--list-running) while a
sandbox runs and after its front returned with a daemon left behind, the
detail view (--show-running), settings changed live (--change-running) and
their effect on the very next call, ptrace.scope 3 one-way, every change in
the audit log; and the control socket attacked: by a second user
(SO_PEERCRED), by the sandboxed program itself and by a program of another
sandbox (contained and not, yama-run run by root and by uid 1001), by a
socket planted in the control directory; stale sockets cleaned up."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from as_user import SYSTEM_PYTHON, UID, as_user  # noqa: F401  (fixture)
from conftest import YAMA_RUN, requires_root, tree_env

pytestmark = requires_root       # other identities (setpriv), sysctls
OTHER_UID = 1002
STEP_TIMEOUT = 30               # s: a bound on a stall, never a timing assertion

# The program run inside the sandbox: it performs one step per cmd.N file
# the test writes and answers in res.N.
ACTOR = r'''
import ctypes, errno, json, os, socket, subprocess, sys, time
base = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]


def put(name, text):
    with open(f"{base}/{name}.tmp", "w") as f:
        f.write(text)
    os.rename(f"{base}/{name}.tmp", f"{base}/{name}")


def attach_child():
    """PTRACE_ATTACH to a child of ours: scope 1 allows it, 3 never."""
    pid = os.fork()
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    try:
        if libc.ptrace(16, pid, None, None) == 0:
            os.waitpid(pid, 0)
            return "0"
        return errno.errorcode[ctypes.get_errno()]
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def link(src, dst):
    try:
        os.link(src, dst)
        os.unlink(dst)
        return "0"
    except OSError as exc:
        return errno.errorcode[exc.errno]


def read(path):
    try:
        with open(path) as f:
            f.read()
        return "0"
    except OSError as exc:
        return errno.errorcode[exc.errno]


def control_sockets():
    dirs = [os.path.join(os.environ.get("XDG_RUNTIME_DIR", "/nonexistent"), "yama-run"),
            f"/run/user/{os.getuid()}/yama-run", "/run/yama-run", f"/tmp/yama-run-{os.getuid()}"]
    for d in dirs:
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for name in names:
            if name.endswith(".sock"):
                yield os.path.join(d, name)


def loosen(path):
    """Connect as a sandboxed program and ask to loosen everything."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(path)
        try:        # a supervisor that refuses may have answered and closed already
            s.sendall(json.dumps({"v": 1, "op": "set", "changes": [
                ["ptrace.scope", "0"], ["hardlinks.protected", "0"]]}).encode() + b"\n")
            s.shutdown(socket.SHUT_WR)
        except BrokenPipeError:
            pass
        data = b""
        while not data.endswith(b"\n"):       # one line, as yama-run's client reads
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return json.loads(data) if data else {"closed": True}
    except OSError as exc:
        return {"oserror": errno.errorcode.get(exc.errno, str(exc))}
    finally:
        s.close()


def signal0(pid):
    try:
        os.kill(int(pid), 0)
        return "0"
    except OSError as exc:
        return errno.errorcode[exc.errno]


def readlink(path):
    try:
        os.readlink(path)
        return "0"
    except OSError as exc:
        return errno.errorcode[exc.errno]


def attack():
    return json.dumps({path: loosen(path) for path in control_sockets()})


def attack_daemonised():
    """The same from a daemon: double fork, new session, parent gone."""
    out = f"{base}/daemon-attack"
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            result = attack()
            put("daemon-attack", result)
        os._exit(0)
    while not os.path.exists(out):
        time.sleep(0.02)
    with open(out) as f:
        return f.read()


def attack_with_cli(ident):
    """yama-run --change-running run from inside the sandbox."""
    r = subprocess.run([sys.executable, "-m", "sandbox.cli", "--change-running", ident,
                        "--set", "ptrace.scope=0"], capture_output=True, text=True)
    return json.dumps({"status": r.returncode, "stderr": r.stderr, "stdout": r.stdout})


def plant(name):
    """Remove our supervisor's socket and listen in its place."""
    d = os.path.dirname(next(iter(control_sockets())))
    for old in os.listdir(d):
        if old.endswith(".sock"):
            os.unlink(os.path.join(d, old))
    global planted
    planted = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    planted.bind(os.path.join(d, name.replace("PID", str(os.getpid()))))
    planted.listen(8)
    return "0"


OPS = {"attach": attach_child, "link": link, "read": read, "signal0": signal0,
       "readlink": readlink, "attack": attack,
       "attack-daemonised": attack_daemonised, "attack-cli": attack_with_cli,
       "plant": plant}
put("pid", str(os.getpid()))
n = 0
while True:
    while not os.path.exists(f"{base}/cmd.{n}"):
        time.sleep(0.02)
    with open(f"{base}/cmd.{n}") as f:
        words = f.read().split()
    if words[0] == "quit":
        break
    put(f"res.{n}", OPS[words[0]](*words[1:]))
    n += 1
'''


def wait_for(path: Path, what: str) -> str:
    deadline = time.monotonic() + STEP_TIMEOUT
    while not path.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} in {STEP_TIMEOUT}s")
        time.sleep(0.02)
    return path.read_text()


class Identity:
    """yama-run and its clients run as root or as uid 1001, with a runtime
    directory (XDG_RUNTIME_DIR) of the test's own."""

    def __init__(self, who: str, user, where: Path):
        self.who, self.user = who, user
        self.uid = UID if who == "user" else 0
        self.runtime = where / f"runtime-{who}"
        self.state = where / f"state-{who}"         # the journal, where no journald runs
        for path in (self.runtime, self.state):
            path.mkdir(mode=0o700)
            os.chown(path, self.uid, self.uid)
        self.python = SYSTEM_PYTHON if who == "user" else sys.executable

    def env(self) -> dict:
        extra = {"XDG_RUNTIME_DIR": str(self.runtime), "XDG_STATE_HOME": str(self.state)}
        if self.who == "user":
            return self.user.env(extra)
        return {**tree_env(), **extra}

    def command(self, *args) -> list[str]:
        if self.who == "user":
            return self.user.command(*args)
        return [*YAMA_RUN, *map(str, args)]

    def yama(self, *args) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*args), env=self.env(), capture_output=True,
                              text=True, timeout=60)

    def control_dir(self) -> Path:
        return self.runtime / "yama-run"


class Sandbox:
    """The actor under yama-run: started, stepped, stopped."""

    def __init__(self, ident: Identity, where: Path, *options, detached=False):
        self.ident = ident
        self.base = Path(tempfile.mkdtemp(prefix="run-", dir=where))
        self.base.chmod(0o755)
        (self.base / "actor.py").write_text(ACTOR)
        self.audit_log = self.base / "audit.log"
        os.chown(self.base, ident.uid, ident.uid)
        actor = f"{ident.python} {self.base}/actor.py {self.base}"
        program = (["sh", "-c", f"{actor} & exit 0"] if detached else actor.split())
        self.err = open(self.base / "stderr", "w")
        sockets_before = set(ident.control_dir().glob("*.sock"))
        self.front = subprocess.Popen(
            ident.command("-v", "--audit-log", self.audit_log, *options, "--", *program),
            env=ident.env(), stdout=subprocess.DEVNULL, stderr=self.err)
        self.pid = int(wait_for(self.base / "pid", "actor started"))
        self.steps = 0
        # The control socket is made once the chain is loaded, which on the
        # cached launch path is after the program started: wait for it.
        deadline = time.monotonic() + STEP_TIMEOUT
        while not set(ident.control_dir().glob("*.sock")) - sockets_before:
            if time.monotonic() > deadline:
                pytest.fail(f"no control socket in {STEP_TIMEOUT}s: {self.stderr()}")
            time.sleep(0.02)

    def do(self, *words) -> str:
        n = self.steps
        self.steps += 1
        (self.base / f"cmd.{n}.tmp").write_text(" ".join(words))
        os.rename(self.base / f"cmd.{n}.tmp", self.base / f"cmd.{n}")
        return wait_for(self.base / f"res.{n}", f"answer to {words}")

    def yama(self, *args) -> subprocess.CompletedProcess:
        return self.ident.yama(*args)

    def audit(self, action: str) -> list[dict]:
        if not self.audit_log.exists():
            return []
        records = [json.loads(line) for line in self.audit_log.read_text().splitlines()]
        return [r for r in records if r.get("action") == action]

    def stop(self) -> None:
        (self.base / f"cmd.{self.steps}").write_text("quit")
        try:
            self.front.wait(timeout=STEP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.front.kill()
            self.front.wait()
        deadline = time.monotonic() + STEP_TIMEOUT
        while _alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)
        self.err.close()

    def stderr(self) -> str:
        return (self.base / "stderr").read_text()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def where(open_dir):
    return open_dir


@pytest.fixture(params=["root", "user"])
def ident(request, where):
    user = request.getfixturevalue("as_user") if request.param == "user" else None
    return Identity(request.param, user, where)


@pytest.fixture
def root(where):
    return Identity("root", None, where)


@pytest.fixture
def sandboxes(where):
    started: list[Sandbox] = []

    def start(ident: Identity, *options, detached=False) -> Sandbox:
        box = Sandbox(ident, where, *options, detached=detached)
        started.append(box)
        return box

    yield start
    for box in started:
        box.stop()


def rows(listing: str) -> list[list[str]]:
    lines = listing.splitlines()
    assert lines[0].split()[:3] == ["SUPERVISOR", "PID", "PROGRAM"], listing
    return [line.split() for line in lines[1:] if line[:1].isdigit()]


def supervisor_of(box: Sandbox) -> int:
    r = box.yama("--show-running", box.pid)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.split("(supervisor ", 1)[1].split(")", 1)[0])


def raw_ask(path: Path, request: dict, prefix=(), python=SYSTEM_PYTHON) -> dict:
    """One request on a control socket from a process of our choosing."""
    code = ("import json, socket, sys; s = socket.socket(socket.AF_UNIX); "
            f"s.settimeout(10); s.connect({str(path)!r}); "
            "\ntry:\n"
            f"    s.sendall({json.dumps(request)!r}.encode() + b'\\n'); "
            "s.shutdown(socket.SHUT_WR)\nexcept BrokenPipeError: pass\ndata = b''\n"
            "while not data.endswith(b'\\n'):\n    c = s.recv(65536)\n    data += c\n"
            "    if not c: break\n"
            "print(data.decode())")
    r = subprocess.run([*prefix, python, "-c", code], capture_output=True, text=True,
                       timeout=30)
    if r.returncode:
        return {"client_error": r.stderr.strip().splitlines()[-1]}
    return json.loads(r.stdout)


def the_socket(ident: Identity) -> Path:
    sockets = sorted(ident.control_dir().glob("*.sock"))
    assert len(sockets) == 1, sockets
    return sockets[0]


# -- the listing and the detail view ----------------------------------------------------

def test_the_listing_shows_a_running_sandbox(ident, sandboxes):
    box = sandboxes(ident, "--set", "ptrace.scope=2")
    r = box.yama("--list-running")
    assert r.returncode == 0, r.stderr
    (row,) = rows(r.stdout)
    supervisor, main, program, profile, state, procs, denials = row[:7]
    assert int(main) == box.pid
    assert program == os.path.basename(ident.python)
    assert (profile, state, procs, denials) == ("default", "running", "1", "0")
    assert "ptrace.scope=2" in row[7:] and "hardlinks.protected=1" in row[7:]
    assert "(1 running sandbox; control sockets in " + str(ident.control_dir()) in r.stdout
    # the socket: owner-only, in an owner-only directory
    sock = the_socket(ident)
    assert sock.name.startswith(f"{supervisor}.")
    for path, mode in ((ident.control_dir(), 0o700), (sock, 0o600)):
        st = path.stat()
        assert (st.st_uid, st.st_mode & 0o777) == (ident.uid, mode)


def test_denials_so_far_are_counted(root, sandboxes):
    box = sandboxes(root, "--set", "ptrace.scope=3")
    assert box.do("attach") == "EPERM"
    (row,) = rows(box.yama("--list-running").stdout)
    assert row[6] == "1"


def test_the_detail_view(ident, sandboxes):
    box = sandboxes(ident)
    r = box.yama("--show-running", box.pid)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert f"command:    {ident.python} {box.base}/actor.py {box.base}" in out
    assert f"running (program pid {box.pid}; 1 process in the sandbox)" in out
    assert f"by uid {ident.uid}" in out
    assert "ptrace.scope = 1  # " in out
    assert "may become 0, 1, 2, 3 live" in out
    assert "backend:    notify; not contained" in out
    comm = Path(f"/proc/{box.pid}/comm").read_text().strip()    # python in a venv
    assert f"{box.pid} {comm}: {ident.python} {box.base}/actor.py" in out
    # by program name as well, and a pid of no sandbox is said so
    by_name = box.yama("--show-running", comm).stdout
    assert by_name.split("\n  processes:")[0] == out.split("\n  processes:")[0]
    r = box.yama("--show-running", "1")
    assert r.returncode == 125 and "no running sandbox of this user holds process 1" in r.stderr


def test_a_start_from_the_cached_plan_is_described_as_a_cold_one(root, sandboxes):
    """The second start of a command comes from its cached plan: the sandbox
    is listed and described the same (its profile, file, each setting's
    origin), not as a profile of unknown origin. (As root: the user fixture's
    fresh copy of the libraries makes a plan too new to keep.)"""
    ident = root
    def described(box):
        out = box.yama("--show-running", box.pid).stdout
        return [line for line in out.splitlines()
                if line.startswith("  profile:") or " = " in line]
    options = ("--set", "ptrace.scope=2")
    cold, cached = sandboxes(ident, *options), sandboxes(ident, *options)
    assert "plan: from the cache" in cached.stderr(), cached.stderr()
    first = described(cold)
    assert first[0].startswith("  profile:    default (") and "?" not in first[0], first
    assert any("ptrace.scope = 2  # --set" in line for line in first), first
    assert described(cached) == first
    (row,) = [r for r in rows(cached.yama("--list-running").stdout) if int(r[1]) == cached.pid]
    assert row[3] == "default"


def test_a_daemon_left_behind_is_listed_and_changed(ident, sandboxes):
    box = sandboxes(ident, detached=True)
    assert box.front.wait(timeout=STEP_TIMEOUT) == 0          # the front returned
    (row,) = rows(box.yama("--list-running").stdout)
    assert row[4] == "detached"
    assert "the program exited and yama-run returned; 1 process left, still supervised" in \
        box.yama("--show-running", box.pid).stdout
    assert box.do("attach") == "0"
    r = box.yama("--change-running", box.pid, "--set", "ptrace.scope=3")
    assert r.returncode == 0, r.stderr
    assert box.do("attach") == "EPERM"
    box.stop()
    # the supervisor ends with the last process, and its socket with it
    deadline = time.monotonic() + STEP_TIMEOUT
    while list(ident.control_dir().glob("*.sock")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not list(ident.control_dir().glob("*.sock"))
    assert "(0 running sandboxes;" in box.yama("--list-running").stdout


# -- settings changed live ---------------------------------------------------------------

def test_scope_1_to_3_refuses_the_very_next_attach(ident, sandboxes):
    box = sandboxes(ident)
    assert box.do("attach") == "0"
    r = box.yama("--change-running", box.pid, "--set", "ptrace.scope=3")
    assert r.returncode == 0, r.stderr
    assert "ptrace.scope 1 -> 3 (tightened; in force from the next call)" in r.stdout
    assert box.do("attach") == "EPERM"
    (record,) = box.audit("setting-changed")
    assert (record["setting"], record["old"], record["new"], record["direction"]) == \
        ("ptrace.scope", 1, 3, "tightened")
    assert record["by_uid"] == ident.uid and record["by_pid"] > 0
    assert record["socket"].startswith(str(ident.control_dir()))
    assert "ptrace.scope = 3  # changed live" in box.yama("--show-running", box.pid).stdout
    journal = box.yama("--list-denials").stdout           # the journal has it too
    assert "ptrace.scope 1 -> 3 (tightened; in force from the next call), by uid " \
        f"{ident.uid} (pid {record['by_pid']} " in journal


def test_scope_3_is_one_way(ident, sandboxes):
    box = sandboxes(ident, "--set", "ptrace.scope=2")
    assert box.yama("--change-running", box.pid, "--set", "ptrace.scope=3").returncode == 0
    for value in ("0", "1", "2"):
        r = box.yama("--change-running", box.pid, "--set", f"ptrace.scope={value}")
        assert r.returncode == 125
        assert "ptrace.scope is 3, which is one-way as in the kernel" in r.stderr
    # writing 3 again is allowed, as in the kernel; nothing was lowered
    assert "ptrace.scope stays 3" in box.yama("--change-running", box.pid, "--set",
                                              "ptrace.scope=3").stdout
    assert box.do("attach") == "EPERM"
    refused = box.audit("setting-change-refused")
    assert [r["changes"] for r in refused] == [[["ptrace.scope", v]] for v in "012"]
    assert "not 0, 1, 2: ptrace.scope is 3" in box.yama("--show-running", box.pid).stdout


def test_a_request_is_made_whole_or_not_at_all(root, sandboxes):
    box = sandboxes(root)
    r = box.yama("--change-running", box.pid, "--set", "ptrace.scope=3",
                 "--set", "hardlinks.protected=7")
    assert r.returncode == 125 and "hardlinks.protected" in r.stderr
    assert box.do("attach") == "0"                 # scope 3 was not applied either
    assert box.audit("setting-changed") == []


def test_loosening_by_the_owner_takes_effect(as_user, where, sandboxes):
    box = sandboxes(Identity("user", as_user, where), "--set", "ptrace.scope=2")
    assert box.do("attach") == "EPERM"             # 2: only with CAP_SYS_PTRACE
    r = box.yama("--change-running", box.pid, "--set", "ptrace.scope=1")
    assert "ptrace.scope 2 -> 1 (loosened" in r.stdout
    assert box.do("attach") == "0"
    (record,) = box.audit("setting-changed")
    assert record["direction"] == "loosened"


@pytest.fixture
def foreign_file(where):
    """A file uid 1001 does not own and may not write: linking it is what
    fs.protected_hardlinks=1 refuses."""
    path = where / "foreign"
    path.write_text("not yours\n")
    path.chmod(0o644)
    return path


def test_hardlinks_0_to_1_refuses_the_very_next_link(as_user, where, sandboxes, sysctl,
                                                   foreign_file):
    sysctl("fs.protected_hardlinks", 0)
    ident = Identity("user", as_user, where)
    box = sandboxes(ident, "--set", "hardlinks.protected=0")
    target = box.base / "link"
    assert box.do("link", str(foreign_file), str(target)) == "0"
    r = box.yama("--change-running", box.pid, "--set", "hardlinks.protected=1")
    assert r.returncode == 0, r.stderr
    assert "hardlinks.protected 0 -> 1 (tightened" in r.stdout
    assert box.do("link", str(foreign_file), str(target)) == "EPERM"
    assert "level 1 enforced by yama-run" in box.stderr()      # said with -v
    (record,) = box.audit("setting-changed")
    assert (record["old"], record["new"], record["by_uid"]) == (0, 1, UID)


@pytest.fixture
def foreign_link(where):
    """A link owned by uid 1001 in a sticky world-writable directory of uid
    1002: root following it is what fs.protected_symlinks=1 refuses."""
    d = where / "sticky"
    d.mkdir()
    os.chown(d, OTHER_UID, OTHER_UID)
    d.chmod(0o1777)
    (where / "target").write_text("x")
    link = d / "link"
    link.symlink_to(where / "target")
    os.lchown(link, UID, UID)
    return link


@pytest.mark.parametrize("backend", ["notify", "ptrace"])
def test_a_tightening_that_needs_unrouted_calls_says_how_to_start(root, sandboxes, sysctl,
                                                                 foreign_link, backend):
    sysctl("fs.protected_symlinks", 0)
    quiet = ("--backend", backend, "--set", "symlinks.protected=0",
             "--set", "fifos.protected=0", "--set", "regular.protected=0")
    box = sandboxes(root, *quiet)
    r = box.yama("--change-running", box.pid, "--set", "symlinks.protected=1")
    assert r.returncode == 125
    assert "started without them" in r.stderr and "--ready-to-tighten" in r.stderr
    assert 'may become 0 live; not "auto", 1: symlinks would need calls routed that this ' \
        "sandbox was started without (--ready-to-tighten)" in \
        box.yama("--show-running", box.pid).stdout
    # started ready for it, the same change is made and holds on the next open
    ready = sandboxes(root, "--ready-to-tighten", *quiet)
    assert ready.do("read", str(foreign_link)) == "0"
    r = ready.yama("--change-running", ready.pid, "--set", "symlinks.protected=1")
    assert r.returncode == 0, r.stderr
    assert ready.do("read", str(foreign_link)) == "EACCES"
    assert "--ready-to-tighten" in ready.yama("--show-running", ready.pid).stdout


def test_containment_is_added_live_by_the_hooks_and_never_lifted(root, sandboxes):
    outside = subprocess.Popen(["sleep", "60"])
    try:
        box = sandboxes(root, "--profile", "strict", "--set", "contain.enabled=false")
        assert box.do("signal0", str(outside.pid)) == "0"
        assert box.do("readlink", f"/proc/{outside.pid}/cwd") == "0"
        r = box.yama("--change-running", box.pid, "--set", "contain.enabled=true")
        assert "contain.enabled false -> true (tightened" in r.stdout, r.stderr
        assert box.do("signal0", str(outside.pid)) == "EPERM"
        # its links too (routed from the start where containment may come)
        assert box.do("readlink", f"/proc/{outside.pid}/cwd") == "EACCES"
        # root's program is in no user namespace of its own: the window is said
        assert "contained (hooks alone: a call checked then continued can be raced" in \
            box.yama("--show-running", box.pid).stdout
        # started in a Landlock domain: nothing lifts it
        landlocked = sandboxes(root, "--profile", "strict")
        r = landlocked.yama("--change-running", landlocked.pid, "--set", "contain.enabled=false")
        assert r.returncode == 125 and "no one can lift from a running process" in r.stderr
        assert landlocked.do("signal0", str(outside.pid)) == "EPERM"
    finally:
        outside.kill()
        outside.wait()


# -- the control socket attacked -------------------------------------------------------

def test_a_second_user_is_refused(root, sandboxes):
    box = sandboxes(root)
    sock = the_socket(root)
    other = ["setpriv", f"--reuid={OTHER_UID}", f"--regid={OTHER_UID}", "--clear-groups"]
    # the modes keep uid 1002 out ...
    assert "PermissionError" in raw_ask(sock, {"v": 1, "op": "status"}, other)["client_error"]
    # ... and with the mode overridden (CAP_DAC_OVERRIDE kept), SO_PEERCRED does
    capable = [*other, "--inh-caps=+dac_override", "--ambient-caps=+dac_override"]
    answer = raw_ask(sock, {"v": 1, "op": "set", "changes": [["ptrace.scope", "0"]]}, capable)
    assert answer["refused"] == f"uid {OTHER_UID} is neither the sandbox's owner nor root"
    (record,) = box.audit("control-refused")
    assert record["uid"] == OTHER_UID
    assert box.do("attach") == "0" and box.audit("setting-changed") == []


def test_root_may_ask_a_users_sandbox(as_user, where, sandboxes):
    ident = Identity("user", as_user, where)
    box = sandboxes(ident)
    answer = raw_ask(the_socket(ident), {"v": 1, "op": "status"})
    assert answer["main_pid"] == box.pid and answer["uid"] == UID


@pytest.mark.parametrize("contained", [False, True], ids=["not-contained", "contained"])
@pytest.mark.parametrize("backend", ["notify", "ptrace"])
def test_the_sandboxed_program_cannot_use_any_control_socket(ident, sandboxes, contained,
                                                             backend):
    """The actor, its daemon, and yama-run's own client run inside, against
    its own sandbox's socket and another sandbox's; contained, the program
    is also in a Landlock domain."""
    profile = ("--profile", "strict", "--set", "ptrace.scope=1") if contained else ()
    victim = sandboxes(ident, "--set", "ptrace.scope=1")
    box = sandboxes(ident, "--backend", backend, *profile)
    assert len(list(ident.control_dir().glob("*.sock"))) == 2
    for step in ("attack", "attack-daemonised"):
        answers = json.loads(box.do(step))
        ours = {path: answer for path, answer in answers.items()
                if Path(path).parent == ident.control_dir()}
        assert len(ours) == 2, answers
        for path, answer in answers.items():        # and any other the attacker found
            if path not in ours and answer.get("oserror") == "ECONNREFUSED":
                continue                            # a stale one: nobody listens
            assert "refused" in answer and "every sandboxed process" in answer["refused"], \
                (step, path, answer)
    r = json.loads(box.do("attack-cli", str(supervisor_of(victim))))
    assert r["status"] == 125 and "2 control sockets did not answer: refused: pid " in \
        r["stderr"] and "as every sandboxed process does" in r["stderr"], r
    assert "->" not in r["stdout"]
    # nothing was changed in either sandbox, every attempt audited
    for target in (box, victim):
        assert target.audit("setting-changed") == []
        assert target.audit("control-refused")
        detail = target.yama("--show-running", target.pid).stdout
        assert "ptrace.scope = 1  # " in detail and "changes:" not in detail
    assert victim.do("attach") == "0"    # (no debugger inside under the ptrace backend)


def test_a_socket_planted_by_the_program_is_not_believed(ident, sandboxes):
    box = sandboxes(ident)
    supervisor = supervisor_of(box)
    assert box.do("plant", "PID.0000000000000000.sock") == "0"
    r = box.yama("--list-running")
    assert f"{box.pid}.0000000000000000.sock: served by pid {box.pid}, which runs with " \
           "no_new_privs under a seccomp filter" in r.stdout
    # the supervisor notices and listens again under a new name
    deadline = time.monotonic() + STEP_TIMEOUT
    while not box.audit("control-renewed") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert box.audit("control-renewed")
    (row,) = rows(box.yama("--list-running").stdout)
    assert int(row[0]) == supervisor
    r = box.yama("--change-running", box.pid, "--set", "ptrace.scope=3")
    assert r.returncode == 0, r.stderr
    assert box.do("attach") == "EPERM"


def test_a_socket_named_after_another_process_is_not_believed(root, sandboxes):
    """A socket named after another process's pid: its listener is not that pid."""
    box = sandboxes(root)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # bound by this test, named after the child: pid mismatch
        impostor = root.control_dir() / f"{child.pid}.feedfeedfeedfeed.sock"
        listener.bind(str(impostor))
        listener.listen(1)
        r = box.yama("--list-running")
        assert f"served by pid {os.getpid()}, not by supervisor {child.pid}" in r.stdout
        assert len(rows(r.stdout)) == 1
    finally:
        listener.close()
        child.kill()
        child.wait()


def test_stale_sockets_are_removed_never_trusted(root, sandboxes):
    """A socket nobody listens on (a supervisor killed, a leftover file) is
    removed by the next listing; the one of a live sandbox is kept."""
    killed = sandboxes(root)
    supervisor = supervisor_of(killed)
    os.kill(supervisor, signal.SIGKILL)            # the program dies with it (PDEATHSIG)
    leftover = root.control_dir() / "4194000.0123456789abcdef.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(leftover))
    s.close()
    live = sandboxes(root)
    r = live.yama("--list-running")
    assert "removed 4194000.0123456789abcdef.sock: stale" in r.stdout
    assert f"its supervisor {supervisor} is gone" in r.stdout
    (row,) = rows(r.stdout)
    assert int(row[1]) == live.pid
    assert [p.name.split(".")[0] for p in root.control_dir().glob("*.sock")] == [row[0]]


def test_a_nested_yama_run_makes_no_socket(root, sandboxes):
    """A supervisor inside a sandbox could not tell its own program from a
    client: it has no socket, and says so with -v."""
    r = subprocess.run(root.command("--", *root.command("-v", "--", "true")),
                       env=root.env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "no control socket: this yama-run runs inside another sandbox" in r.stderr


def test_introspection_options_run_alone(root):
    r = root.yama("--list-running", "true")
    assert r.returncode == 125 and "each run alone, and no program" in r.stderr
    r = root.yama("--list-running", "--set", "ptrace.scope=3")
    assert r.returncode == 125 and "did you mean --change-running" in r.stderr
    r = root.yama("--list-running")
    assert r.returncode == 0 and "(0 running sandboxes;" in r.stdout


@requires_root
def test_roots_sockets_are_where_no_other_user_can_make_the_directory_first():
    """Without XDG_RUNTIME_DIR and /run/user/0 (sudo, su, a cron job), root's
    control directory is /run/yama-run: /tmp/yama-run-0, made first by uid
    1001, left root's sandboxes without a control socket (not listed, not
    changed live)."""
    if os.path.isdir("/run/user/0"):
        pytest.skip("systemd made /run/user/0 here: root's sockets are there")
    env = tree_env({k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"})
    squat = Path("/tmp/yama-run-0")
    made = not squat.exists()
    if made:                            # as another user would, before root's first run
        squat.mkdir(mode=0o700)
        os.chown(squat, 1001, 1001)
    running = subprocess.Popen([*YAMA_RUN, "--", "sleep", "29.75"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, listed, out = time.monotonic() + 30, [], ""
        while not listed and time.monotonic() < deadline:
            out = subprocess.run([*YAMA_RUN, "--list-running"], env=env, capture_output=True,
                                 text=True, timeout=60).stdout
            listed = [line.split() for line in out.splitlines()
                      if line[:1].isdigit() and line.split()[2] == "sleep"]
            time.sleep(0.1)
        assert listed, out
        assert "control sockets in /run/yama-run" in out, out
        assert not made or list(squat.iterdir()) == []
    finally:
        running.terminate()
        running.wait(timeout=30)
        if made:
            shutil.rmtree(squat, ignore_errors=True)
