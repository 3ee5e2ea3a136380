"""Mechanism of the emulated path walk (csrc/walk.c), beyond the behaviour
parity of test_symlinks/test_sticky/test_path_hazards: the path is read once
(a thread flipping it cannot slip a protected link through), hop counting,
each hop of a chain decided on its own directory, openat2's struct checks.

yama-run runs with the kernel's own protections off, so every EACCES seen
here is yama-run's."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import requires_root, yama_run

PROFILE = str(Path(__file__).resolve().parent.parent / "profiles" / "default.toml")
AS_1001 = ["setpriv", "--reuid=1001", "--regid=1001", "--clear-groups"]
# An interpreter uid 1001 can run (the one on root's PATH may live below /root)
PYTHON_1001 = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or "python3"
SYSCTLS = ("fs.protected_symlinks", "fs.protected_fifos", "fs.protected_regular")

pytestmark = [requires_root,
              pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv")]


@pytest.fixture
def top(sysctl):
    for name in SYSCTLS:
        sysctl(name, 0)
    d = Path(tempfile.mkdtemp(prefix="yr-walk-", dir="/tmp"))
    d.chmod(0o755)
    sticky = d / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    (d / "safe_t").write_text("S")
    (d / "evil_t").write_text("E")
    for p in (d / "safe_t", d / "evil_t"):
        p.chmod(0o644)
    os.symlink(d / "safe_t", sticky / "safe")       # root's: the directory's owner's
    os.symlink(d / "evil_t", sticky / "evil")
    os.lchown(sticky / "evil", 1002, 1002)          # a stranger's link
    yield d
    shutil.rmtree(d, ignore_errors=True)


def run(*cmd, options=(), env=None, cwd=None, audit=None):
    extra = ["--audit-log", str(audit)] if audit else []
    return yama_run("--profile", PROFILE, *options, *extra, "--", *cmd, cwd=cwd,
                    env={**os.environ, **(env or {})}, timeout=120)


@pytest.mark.parametrize("fast", ["1", "0"], ids=["fast", "nofast"])
def test_flipping_the_path_never_follows_the_protected_link(top, helper, fast):
    """Natively (sysctl off) both names open; under yama-run every open that
    ends on the stranger's link is refused, however the buffer is flipped."""
    probe = helper("walk_probe")
    env = {"YAMA_RUN_NO_FAST_PATH": "1"} if fast == "0" else {}
    out = run(*AS_1001, probe, "race", "sticky/safe", "sticky/evil", "3000", cwd=top, env=env)
    counts = dict(kv.split("=") for kv in out.stdout.split())
    assert counts["evil"] == "0", out.stdout + out.stderr
    assert int(counts["safe"]) > 0 and int(counts["denied"]) > 0, out.stdout
    # "other": a name read while being rewritten (ENOENT), natively too
    native = subprocess.run([*AS_1001, probe, "race", "sticky/safe", "sticky/evil", "20000"],
                            cwd=top, capture_output=True, text=True, timeout=60)
    assert "evil=0 " not in native.stdout       # the kernel (sysctl 0) follows it


def _chain(d: Path, n: int) -> Path:
    """n links in a plain directory, each to the next, the last to a file."""
    chain = d / f"chain{n}"
    chain.mkdir()
    (chain / "file").write_text("x")
    for i in range(n):
        os.symlink("file" if i == n - 1 else f"l{i + 1}", chain / f"l{i}")
    return chain / "l0"


@pytest.mark.parametrize("n,want", [(40, 0), (41, 1)])
def test_forty_hops_then_eloop(top, n, want):
    start = _chain(top, n)
    native = subprocess.run(["cat", str(start)], capture_output=True, text=True)
    out = run("cat", str(start))
    assert native.returncode == want and out.returncode == want
    if want:
        assert "Too many levels of symbolic links" in out.stderr


def test_each_hop_is_decided_on_its_own_directory(top, tmp_path):
    """My link in the sticky dir points to the stranger's link there: the
    second hop is refused, and the audit names that hop."""
    os.symlink("evil", top / "sticky" / "mine")
    os.lchown(top / "sticky" / "mine", 1001, 1001)
    log = tmp_path / "audit.log"
    out = run(*AS_1001, "cat", "sticky/mine", cwd=top, audit=log)
    assert out.returncode == 1 and "Permission denied" in out.stderr
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["module"], r["hook"], r["link"], r["path"], r["syscall"]) for r in records] == [
        ("symlinks", "follow_link", "evil", "sticky/mine", "openat")]


@pytest.mark.parametrize("args,want", [
    (("24",), "ok"), (("23",), "EINVAL"), (("4097",), "E2BIG"),
    (("32", "0"), "ok"), (("32", "1"), "E2BIG"),
])
def test_openat2_struct_size_checks(top, helper, args, want):
    probe = helper("walk_probe")
    native = subprocess.run([probe, "how", *args], capture_output=True, text=True, cwd=top)
    out = run(probe, "how", *args, cwd=top)
    assert native.stdout.strip() == want
    assert out.stdout.strip() == want, out.stderr


def test_magic_links_are_followed_by_the_kernel(top):
    """/proc/self/fd/N of a pipe opens that pipe (readlink-following it could
    not); with O_NOFOLLOW it is ELOOP, as natively."""
    script = ("import os\n"
              "r, w = os.pipe()\n"
              "fd = os.open(f'/proc/self/fd/{w}', os.O_WRONLY)\n"
              "os.write(fd, b'via-proc')\n"
              "print(os.read(r, 8).decode())\n"
              "try:\n"
              "    os.open(f'/proc/self/fd/{w}', os.O_WRONLY | os.O_NOFOLLOW)\n"
              "except OSError as e:\n"
              "    print(e.errno == 40)\n")
    out = run("python3", "-c", script)
    assert out.stdout.split() == ["via-proc", "True"], out.stderr


def test_reopening_a_widowed_pipe_waits_only_in_its_caller(top):
    """/proc/self/fd/N of a pipe whose writer is gone: the open waits (as
    natively) in its caller only; the supervisor serves the next callers."""
    script = ("import os, time\n"
              "r, w = os.pipe()\n"
              "os.close(w)\n"
              "pid = os.fork()\n"
              "if pid == 0:\n"
              "    os.open(f'/proc/self/fd/{r}', os.O_RDONLY)\n"
              "    os._exit(0)\n"
              "time.sleep(0.3)\n"
              "os.stat('/etc/hostname')\n"
              "os.close(os.open('/etc/hostname', os.O_RDONLY))\n"
              "print('served')\n"
              "os.kill(pid, 9)\n"
              "os.waitpid(pid, 0)\n")
    out = run("python3", "-c", script)
    assert out.stdout.split() == ["served"], out.stderr


# ---- fewer syscalls, the same decisions (issue 17) ----------------------------
#
# The walk keeps the trailing link yr_hold_whole found and the object yr_trail
# looked at, borrows the caller's root instead of a copy, takes a leading ".."
# into one look-up, and reopens the held object instead of opening it by name
# again. Each test below makes the decision that depends on it, on a name
# another process keeps swapping, and asserts the forbidden effect never
# happens (natively, with the sysctls off, it does).

FLIPPER = ("import ctypes, os, sys\n"
           "libc = ctypes.CDLL(None, use_errno=True)\n"
           "a, b = (os.fsencode(p) for p in sys.argv[1:3])\n"
           "print('ready', flush=True)\n"
           "while True:\n"
           "    libc.renameat2(-100, a, -100, b, 2)\n")     # RENAME_EXCHANGE: never missing

VICTIM = ("import json, os, sys\n"
          "path, n, how = sys.argv[1], int(sys.argv[2]), sys.argv[3]\n"
          "inos = {int(sys.argv[4]): 'S', int(sys.argv[5]): 'E'}\n"
          "seen = dict(S=0, E=0, denied=0, other=0)\n"
          "for _ in range(n):\n"
          "    try:\n"
          "        if how == 'open':\n"
          "            fd = os.open(path, os.O_RDONLY)\n"
          "            got = os.read(fd, 1).decode()\n"
          "            os.close(fd)\n"
          "        else:\n"
          "            got = inos.get(os.stat(path).st_ino, 'other')\n"
          "    except PermissionError:\n"
          "        got = 'denied'\n"
          "    except OSError:\n"
          "        got = 'other'\n"
          "    seen[got if got in seen else 'other'] += 1\n"
          "print(json.dumps(seen))\n")


def _swapped_names(top: Path, partner: str) -> tuple[Path, Path]:
    """sticky/x and sticky/y, swapped all the time: the stranger's link to
    evil_t and a partner (root's link to safe_t, or a plain file of S)."""
    sticky = top / "sticky"
    if partner == "link":
        os.symlink(top / "safe_t", sticky / "x")
    else:
        (sticky / "x").write_text("S")
        (sticky / "x").chmod(0o644)
    os.symlink(top / "evil_t", sticky / "y")
    os.lchown(sticky / "y", 1002, 1002)
    os.symlink("sticky", top / "via")                   # a linked directory: the walk
    return sticky / "x", sticky / "y"


@pytest.mark.parametrize("how", ["open", "stat"])
@pytest.mark.parametrize("partner", ["link", "file"])
@pytest.mark.parametrize("route", ["absolute", "relative", "linked-dir"])
def test_a_swapped_trailing_name_is_decided_on_what_is_read(top, route, partner, how):
    """Whichever of the two the caller meets, the follow_link decision is on
    the link whose body is read, in the directory it is read from: the held
    link of the whole-path look-up is checked against the name in the walked
    parent, and the object looked at is the one opened or stat'ed. Never
    the stranger's target; both outcomes are seen."""
    x, y = _swapped_names(top, partner)
    safe_ino = (top / "safe_t").stat().st_ino if partner == "link" else x.stat().st_ino
    path = {"absolute": str(x), "relative": "sticky/x", "linked-dir": "via/x"}[route]
    args = [path, "1500", how, str(safe_ino), str((top / "evil_t").stat().st_ino)]
    flip = subprocess.Popen(["python3", "-c", FLIPPER, str(x), str(y)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert flip.stdout.readline().strip() == "ready"
        # under yama-run: both names met, within a few rounds of 1500 tries
        # (the flipper, another process, may get no CPU through a round on a
        # busy machine), and never the stranger's target in any round
        rounds = []
        for _ in range(5):
            seen = json.loads(run(*AS_1001, PYTHON_1001, "-c", VICTIM, *args, cwd=top).stdout)
            rounds.append(seen)
            assert seen["E"] == 0, rounds
            if seen["S"] > 0 and seen["denied"] > 0:
                break
        # the kernel (sysctl 0) follows it: within a few rounds of 1500 tries
        # (one round's tries all met the other name once, on a busy machine)
        for _ in range(5):
            native = subprocess.run([*AS_1001, PYTHON_1001, "-c", VICTIM, *args], cwd=top,
                                    capture_output=True, text=True, timeout=60)
            if json.loads(native.stdout)["E"] > 0:
                break
    finally:
        flip.kill()
        flip.wait()
    assert seen["S"] > 0 and seen["denied"] > 0, rounds
    assert json.loads(native.stdout)["E"] > 0, native.stdout


JAILED = ("import os, sys\n"
          "jail = sys.argv[1]\n"
          "inside = os.stat(os.path.join(jail, 'etc/marker')).st_ino\n"
          "os.chroot(jail)\n"
          "os.chdir('/d')\n"
          "for p in sys.argv[2:]:\n"
          "    try:\n"
          "        with open(p) as f:\n"
          "            got = f.read().strip()\n"
          "        got += '/' + ('in' if os.stat(p).st_ino == inside else 'out')\n"
          "    except OSError as e:\n"
          "        got = e.strerror\n"
          "    print(p, got)\n")


def test_dotdot_stops_at_a_chrooted_callers_root(top):
    """A chrooted caller: every ".." the walk meets at its root stays there,
    whether stepped by hand, taken with the directories after it in one
    look-up (from below the root), met in a link body, or reached from the
    root itself borrowed for an absolute body. OUT is one level above the
    jail: any escape reads it."""
    jail = top / "jail"
    (jail / "etc").mkdir(parents=True)
    (jail / "d" / "e").mkdir(parents=True)
    (jail / "etc" / "marker").write_text("IN")
    (top / "etc").mkdir()
    (top / "etc" / "marker").write_text("OUT")
    links = {"d/up1": "../etc/marker", "d/up2": "../../etc/marker", "up0": "../etc/marker",
             "d/abs": "/etc/marker", "dl": "d", "d/deep": "../../../../etc",
             "d/e/up": "../../../etc/marker", "d/absdir": "/d/e/../../etc"}
    for name, body in links.items():
        os.symlink(body, jail / name)
    paths = ["up1", "up2", "/up0", "abs", "/dl/up2", "/dl/e/up", "deep/marker",
             "absdir/marker", "../../etc/marker", "/../etc/marker", "e/../../../etc/marker",
             "/dl/../etc/marker"]
    want = [f"{p} IN/in" for p in paths]
    native = subprocess.run(["python3", "-c", JAILED, str(jail), *paths], capture_output=True,
                            text=True, timeout=60)
    assert native.stdout.splitlines() == want, native.stdout + native.stderr
    out = run("python3", "-c", JAILED, str(jail), *paths)
    assert out.stdout.splitlines() == want, out.stdout + out.stderr
