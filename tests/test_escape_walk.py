"""An attacker's pass over the path walk (docs/path-engine.md, "What the
attacks showed").

The program under yama-run races its own walk: a second process of its own
(tests/helpers/walk_race.c, forked before any chroot) swaps two names with
renameat2(RENAME_EXCHANGE) while the program opens or stats a path through
them, a few thousand times. Each test asserts that the forbidden effect never
happens (a stranger's link followed, the supervisor's /proc entries opened, a
chroot jail or an openat2 scope left) and that what the kernel allows still
works. The kernel's fs.protected_* are 0 (the `sysctl` fixture), so what is
tested is yama-run's; the native controls run the same probe without it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import BACKEND_ARGS, requires_root, YAMA_RUN, yama_run
from test_escape import AS_1001, interpreter_for_1001, placed_probe  # noqa: F401  (autouse, per module)

pytestmark = [requires_root,
              pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv")]

TIMEOUT = 120
TRIES = "3000"                         # attempts per race: a second or two under yama-run
# (who starts yama-run, who the program is inside)
WHO = [pytest.param(([], AS_1001), id="root-runs-1001"),
       pytest.param(([], []), id="root-runs-root"),
       pytest.param((AS_1001, []), id="1001-runs-1001")]
# chroot needs CAP_SYS_CHROOT: root inside, or uid 1001 in a user namespace of its own (-U)
JAILED = [pytest.param(([], [], []), id="root-runs-root"),
          pytest.param((AS_1001, [], ["-U"]), id="1001-runs-1001-userns")]
FS_OFF = {"fs.protected_symlinks": 0, "fs.protected_fifos": 0, "fs.protected_regular": 0}


@pytest.fixture(scope="module")
def place():
    d = Path(tempfile.mkdtemp(prefix="yr-walk-", dir="/tmp"))
    d.chmod(0o755)
    (d / "profile.toml").write_text(
        'chain = ["contain", "ptrace", "hardlinks", "symlinks"]\n\n[contain]\nenabled = false\n\n'
        '[ptrace]\nscope = 1\n\n[symlinks]\nprotected = 1\n')
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def probe(helper, place):
    return placed_probe(helper, place, "walk_race")


@pytest.fixture
def quiet(sysctl):
    for name, value in FS_OFF.items():
        sysctl(name, value)


@pytest.fixture
def area(place):
    d = Path(tempfile.mkdtemp(dir=place))
    d.chmod(0o755)
    return d


def outcomes(out: str) -> dict[str, int]:
    got = {}
    for line in out.splitlines():
        key, _, count = line.rpartition(" ")
        got[key] = int(count) if count.isdigit() else count
    return got


def race(probe, args, *, launcher=None, inside=(), cwd=None) -> dict[str, int]:
    """The probe natively (launcher None) or under yama-run started by
    launcher, as `inside`; its outcomes."""
    prog = [*inside, probe, *args]
    cmd = prog if launcher is None else [
        *launcher, *YAMA_RUN, *BACKEND_ARGS, "--profile", str(Path(probe).parent / "profile.toml"),
        "--", *prog]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd)
    got = outcomes(proc.stdout)
    assert proc.returncode == 0 and got and "swapper failed" not in got, \
        proc.stdout + proc.stderr
    return got


def write(path: Path, text: str, uid: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    path.chmod(0o644)
    os.chown(path, uid, uid)
    return path


def tree(*dirs: Path, uid: int = 0, mode: int = 0o755) -> None:
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(mode)
        os.chown(d, uid, uid)


def link(body: str, path: Path, uid: int = 0) -> Path:
    os.symlink(body, path)
    os.lchown(path, uid, uid)
    return path


def uid_of(who) -> int:
    """The program's uid: 1001 unless root runs it as root."""
    launcher, inside = who
    return 1001 if launcher or inside else 0


# -- fs.protected_symlinks: the parent swapped under a followed link ---------------------

@pytest.fixture
def sticky_swap(area):
    """att/S: root's sticky world-writable directory with a stranger's (uid
    1002) link x to stranger.txt; att/D: the attacker's directory with its own
    link x to own.txt. The attacker swaps S and D while opening att/S/x."""
    def build(uid):
        att = area / "att"
        tree(att, uid=uid)
        tree(att / "S", mode=0o1777)
        tree(att / "D", uid=uid)
        link(str(write(area / "stranger.txt", "STRANGER")), att / "S" / "x", uid=1002)
        link(str(write(area / "own.txt", "OWN")), att / "D" / "x", uid=uid)
        return att
    return build


def test_sticky_swap_natively(probe, sticky_swap, sysctl):
    """The control: the kernel's own rule (fs.protected_symlinks=1) gives the
    attacker its own file or EACCES, never the stranger's."""
    sysctl("fs.protected_symlinks", 1)
    att = sticky_swap(1001)
    for _ in range(3):       # (a busy machine may not run the swapper during one run)
        got = race(probe, [str(att / "S"), str(att / "D"), TRIES, "open", str(att / "S" / "x")],
                   launcher=None, inside=AS_1001)
        if "err:EACCES" in got:
            break
    assert set(got) <= {"read:OWN", "err:EACCES"} and "err:EACCES" in got, got


@pytest.mark.parametrize("op", ["open", "stat"])
@pytest.mark.parametrize("who", WHO)
def test_sticky_swap_never_follows_a_strangers_link(probe, sticky_swap, quiet, who, op):
    """The trailing link yr_hold_whole keeps is checked by inode against the
    name in the directory the walk reached: a parent swapped between the two
    look-ups is looked at again, and the decision is made on the directory
    the body is walked from. The stranger's link is never followed."""
    launcher, inside = who
    att = sticky_swap(uid_of(who))
    got = race(probe, [str(att / "S"), str(att / "D"), TRIES, op, str(att / "S" / "x")],
               launcher=launcher, inside=inside)
    own = f"ino:{os.stat(att.parent / 'own.txt').st_ino}" if op == "stat" else "read:OWN"
    assert set(got) <= {own, "err:EACCES"} and "err:EACCES" in got, got


# -- the /proc gate: a directory on the way swapped for a link to the supervisor ----------

@pytest.mark.parametrize("name", ["environ", "mem", "fd/0", "cwd/decoy"])
@pytest.mark.parametrize("who", WHO)
def test_dir_swapped_for_the_supervisors_proc_dir(probe, area, quiet, who, name):
    """att/p, a directory of the attacker's with decoys, swapped with att/l, a
    link to /proc/PPID (the supervisor): the supervisor's entries are never
    opened (EACCES from the gate), the decoys are."""
    launcher, inside = who
    uid = uid_of(who)
    att = area / "att"
    tree(att, att / "p", uid=uid)
    write(att / "p" / name, "DECOY", uid=uid)
    got = race(probe, ["-L", str(att / "l"), str(att / "p"), str(att / "l"), TRIES, "open",
                       str(att / "p" / name)], launcher=launcher, inside=inside)
    assert set(got) <= {"read:DECOY", "err:EACCES"} and "read:DECOY" in got, got


@pytest.mark.parametrize("name", ["environ", "mem"])
@pytest.mark.parametrize("who", [pytest.param(([], []), id="root-runs-root"),
                                 pytest.param((AS_1001, ["-U"]), id="1001-runs-1001-userns")])
def test_dir_swapped_for_a_mount_of_the_supervisors_proc_dir(probe, area, quiet, who, name):
    """att/p and att/q, two directories of the attacker's, each with a
    directory x; att/p/x holds a decoy, and on att/q/x the program has
    bind-mounted /proc/PPID (the supervisor) in a mount namespace of its own.
    A swapper outside that namespace exchanges p and q while the program
    opens att/p/x/NAME: a path with no link on the way, held whole in one
    look-up and opened again by that same look-up (yr_open_whole), which may
    cross into the mount after the swap. The supervisor's entry is never
    given (the gate's EACCES, or the decoy): what the second look-up opened
    is not the inode judged, and is closed."""
    launcher, opts = who
    uid = 1001 if launcher else 0
    att = area / "att"
    tree(att, att / "p", att / "p" / "x", att / "q", att / "q" / "x", uid=uid)
    write(att / "p" / "x" / name, "DECOY", uid=uid)
    got = race(probe, [*opts, "-m", str(att / "q" / "x"), str(att / "p"), str(att / "q"), TRIES,
                       "open", str(att / "p" / "x" / name)], launcher=launcher)
    assert set(got) <= {"read:DECOY", "err:EACCES"} and "read:DECOY" in got, got


# -- chroot: the jail is never left ------------------------------------------------------

@pytest.fixture
def jail(area):
    """jail/ with marker JAIL; the host's marker OUTSIDE next to it."""
    def build(uid):
        j = area / "jail"
        tree(j, uid=uid)
        write(j / "marker", "JAIL", uid=uid)
        write(area / "marker", "OUTSIDE", uid=uid)
        return j
    return build


@pytest.mark.parametrize("who", JAILED)
def test_dir_swapped_for_a_link_to_slash_stays_in_the_jail(probe, area, jail, quiet, who):
    """jail/att/p (a directory) swapped with jail/att/l -> "/": through the
    link, the rest of the path is resolved at the jail's root (JAIL), never
    at the host's (OUTSIDE)."""
    launcher, _, opts = who
    uid = 1001 if launcher else 0
    j = jail(uid)
    att = j / "att"
    tree(att, att / "p", uid=uid)
    rel = str(area / "marker").lstrip("/")
    write(att / "p" / rel, "DECOY", uid=uid)
    write(j / rel, "JAIL", uid=uid)
    link("/", att / "l", uid=uid)
    got = race(probe, [*opts, "-j", str(j), str(att / "p"), str(att / "l"), TRIES, "open",
                       "/att/p/" + rel], launcher=launcher)
    assert set(got) <= {"read:DECOY", "read:JAIL"} and "read:JAIL" in got, got


@pytest.fixture
def moved_out(area, jail):
    """jail/a/b and out/b, swapped from outside the jail: the walk may stand
    in b when b is out/b, whose '..' is out, then the area with OUTSIDE. In
    each b, up -> ../../marker and side -> ../sib/marker (one leading '..',
    the rest taken at once by prefix_at_once), with a sib/marker JAIL in
    jail/a and OUTSIDE in out."""
    def build(uid):
        j = jail(uid)
        tree(j / "a", j / "a" / "b", area / "out", area / "out" / "b", uid=uid)
        for b in (j / "a" / "b", area / "out" / "b"):
            link("../../marker", b / "up", uid=uid)
            link("../sib/marker", b / "side", uid=uid)
        write(j / "a" / "sib" / "marker", "JAIL", uid=uid)
        write(area / "out" / "sib" / "marker", "OUTSIDE", uid=uid)
        return j
    return build


@pytest.mark.parametrize("path", ["/a/b/../../marker", "/a/b/up", "/a/./b/../b/up", "/a/b/side",
                                  "/a/b/../sib/marker"])
@pytest.mark.parametrize("who", JAILED)
def test_dir_moved_out_of_the_jail_under_an_absolute_walk(probe, area, moved_out, quiet,
                                                          who, path):
    """The classic '..' escape, raced: a walk that came through the jail's
    root (an absolute path) never leaves it, whether the '..' is the path's
    or a link body's (the first '..' of a body is judged on the statx of the
    link's parent, taken before: known_dir). A '..' that lands outside the
    jail fails with EAGAIN, as openat2's RESOLVE_IN_ROOT fails when a rename
    races its '..'."""
    launcher, _, opts = who
    j = moved_out(1001 if launcher else 0)
    got = race(probe, [*opts, "-j", str(j), str(j / "a" / "b"), str(area / "out" / "b"), TRIES,
                       "open", path], launcher=launcher)
    assert set(got) <= {"read:JAIL", "err:EAGAIN"} and "read:JAIL" in got, got


@pytest.mark.parametrize("cwd,path", [
    ("/", "a/b/../../marker"), ("/", "a/b/up"), ("/", "a/b/side"), ("/", "a/b/../sib/marker"),
    ("/", "rel"), ("/a", "b/../../marker"), ("/a", "./b/up")])
@pytest.mark.parametrize("who", JAILED)
def test_dir_moved_out_of_the_jail_under_a_relative_walk(probe, area, moved_out, quiet, who,
                                                         cwd, path):
    """The same race from a cwd inside the jail (its root, or jail/a), by a
    relative path, a relative link whose body has the '..' (rel ->
    a/b/../../marker), and a body met on the way: natively 0 of 20,000 left
    the jail; under yama-run such a walk, never passed through the root,
    had its '..' unchecked and read OUTSIDE in about half the tries (found
    by a review). The start below the root is found at the walk's first
    '..', from the descriptor the walk started from."""
    launcher, _, opts = who
    j = moved_out(1001 if launcher else 0)
    link("a/b/../../marker", j / "rel", uid=1001 if launcher else 0)
    got = race(probe, [*opts, "-j", str(j), "-c", cwd, str(j / "a" / "b"), str(area / "out" / "b"),
                       TRIES, "open", path], launcher=launcher)
    assert set(got) <= {"read:JAIL", "err:EAGAIN"} and "read:JAIL" in got, got


def test_a_relative_walk_in_the_jail_natively(probe, area, moved_out):
    """The control of the test above: the kernel's own walk, raced the same
    way, stays in the jail all but very rarely (its window is a few
    instructions: 1 in 3,000 tries once, in a CI-mode run), where yama-run's,
    before, left it in about half."""
    j = moved_out(0)
    link("a/b/../../marker", j / "rel")
    for path in ("a/b/../../marker", "rel"):
        got = race(probe, ["-j", str(j), str(j / "a" / "b"), str(area / "out" / "b"), TRIES,
                           "open", path])
        assert set(got) <= {"read:JAIL", "read:OUTSIDE"}, (path, got)
        assert got.get("read:OUTSIDE", 0) * 100 <= int(TRIES), (path, got)


@pytest.mark.parametrize("path", ["/a/b/..", "a/b/.."])
@pytest.mark.parametrize("who", JAILED)
def test_trailing_dotdot_of_a_dir_moved_out_of_the_jail(probe, area, moved_out, quiet, who,
                                                        path):
    """stat("/a/b/..") and, from the jail's root, stat("a/b/.."): the
    trailing '..' is jail/a, never out/."""
    launcher, _, opts = who
    j = moved_out(1001 if launcher else 0)
    got = race(probe, [*opts, "-j", str(j), str(j / "a" / "b"), str(area / "out" / "b"), TRIES,
                       "stat", path], launcher=launcher)
    inside = f"ino:{os.stat(j / 'a').st_ino}"
    assert set(got) <= {inside, "err:EAGAIN"} and inside in got, got


def test_a_cwd_moved_out_of_the_jail_natively(probe, area, moved_out):
    """The control: the kernel stops '..' at the root only when the walk
    passes through it; from a cwd moved out of the jail, '..' goes on up."""
    j = moved_out(0)
    got = race(probe, ["-j", str(j), "-c", "/a/b", str(j / "a" / "b"), str(area / "out" / "b"),
                       "20000", "open", "../../marker"])
    assert set(got) <= {"read:JAIL", "read:OUTSIDE"} and "read:JAIL" in got, got


@pytest.mark.parametrize("who", JAILED)
def test_cwd_outside_the_jail_walks_as_natively(probe, area, jail, quiet, who):
    """chroot without chdir: the cwd is outside the jail, and '..' from it is
    not stopped, natively as under yama-run; '/' is the jail's."""
    launcher, _, opts = who
    uid = 1001 if launcher else 0
    j = jail(uid)
    up = f"../{area.name}/marker"
    for path, want in [("marker", "OUTSIDE"), (up, "OUTSIDE"), ("/marker", "JAIL"),
                       ("/../../marker", "JAIL")]:
        args = [*opts, "-j", str(j), "-k", "x", "y", "0", "open", path]
        native = race(probe, args, inside=AS_1001 if launcher else [], cwd=area)
        assert native == {f"read:{want}": 1}, (path, native)
        assert race(probe, args, launcher=launcher, cwd=area) == native, path


@pytest.mark.parametrize("who", JAILED)
def test_dotdot_links_at_the_jails_root(probe, area, jail, quiet, who):
    """Links whose bodies begin with '..', met at the jail's root or just
    below it, stop there: natively and under yama-run."""
    launcher, _, opts = who
    uid = 1001 if launcher else 0
    j = jail(uid)
    tree(j / "d", uid=uid)
    link("../../../marker", j / "top", uid=uid)
    link("../d/../../marker", j / "d" / "up", uid=uid)
    link("..", j / "dd", uid=uid)
    for path in ["/top", "top", "/d/up", "d/up", "dd/marker", "/dd/dd/d/../marker"]:
        args = [*opts, "-j", str(j), "x", "y", "0", "open", path]
        native = race(probe, args, inside=AS_1001 if launcher else [])
        assert native == {"read:JAIL": 1}, (path, native)
        assert race(probe, args, launcher=launcher) == native, path


# -- openat2 RESOLVE_BENEATH / RESOLVE_IN_ROOT ------------------------------------------

@pytest.fixture
def scope(area):
    """scope/ (the cwd) with f IN; scope/a/b/up -> ../../f; out/b/up the same
    link outside, and the area's f OUTSIDE; b's own f is B (where a '..'
    stopped at b instead of the scope would lead)."""
    s = area / "scope"
    tree(s, s / "a", s / "a" / "b", area / "out", area / "out" / "b", uid=1001)
    write(s / "f", "IN")
    write(s / "a" / "b" / "f", "B")
    write(area / "f", "OUTSIDE")
    for b in (s / "a" / "b", area / "out" / "b"):
        link("../../f", b / "up", uid=1001)
    link("../../../f", s / "a" / "b" / "far", uid=1001)
    return s


@pytest.mark.parametrize("op", ["beneath", "inroot"])
def test_scoped_openat2_statically(probe, scope, quiet, op):
    """'..'-leading bodies: inside the scope they resolve; past it,
    RESOLVE_BENEATH is EXDEV and RESOLVE_IN_ROOT stops at the scope (not at
    the link's directory: a body walked in one openat2 from there did)."""
    for path in ["a/b/up", "a/b/far", "a/b/../b/up", "a/../a/b/far"]:
        args = ["x", "y", "0", op, path]
        native = race(probe, args, inside=AS_1001, cwd=scope)
        assert race(probe, args, launcher=[], inside=AS_1001, cwd=scope) == native, path
    assert race(probe, ["x", "y", "0", op, "a/b/far"], inside=AS_1001, cwd=scope) == \
        ({"err:EXDEV": 1} if op == "beneath" else {"read:IN": 1})


@pytest.mark.parametrize("path", ["a/b/up", "a/b/../b/up", "a/b/../../f"])
@pytest.mark.parametrize("op", ["beneath", "inroot"])
def test_scoped_openat2_with_b_moved_out(probe, area, scope, quiet, op, path):
    """The walk of a scoped openat2 stands in b when b is moved out of the
    scope: its '..' never reaches the area's f (the kernel: EAGAIN)."""
    args = [str(scope / "a" / "b"), str(area / "out" / "b"), TRIES, op, path]
    native = race(probe, args, inside=AS_1001, cwd=scope)
    assert "read:OUTSIDE" not in native, native
    got = race(probe, args, launcher=[], inside=AS_1001, cwd=scope)
    assert set(got) <= {"read:IN", "err:EAGAIN", "err:EXDEV"} and "read:IN" in got, got


RESOLVE_CACHED_PROBE = r"""
import ctypes, errno, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
for resolve in (0x20, 0):                             # RESOLVE_CACHED, then none
    for path in sys.argv[1:]:
        how = struct.pack("QQQ", os.O_RDONLY | os.O_CLOEXEC, 0, resolve)
        fd = libc.syscall(437, -100, path.encode(), how, len(how))   # openat2
        print(f"{resolve:#x} {path} " + ("ok" if fd >= 0 else errno.errorcode[ctypes.get_errno()]))
        if fd >= 0:
            os.close(fd)
"""


def test_resolve_cached_is_eagain_never_a_full_walk(tmp_path):
    """openat2's RESOLVE_CACHED asks for a look-up done from the kernel's
    caches or not at all (EAGAIN: retry without it). The supervisor walked
    the whole path anyway, magic links included, where the kernel answers
    EAGAIN; its walk is several calls that may block, so it is always EAGAIN,
    and the call without the flag is served as ever."""
    (tmp_path / "f").write_text("x")
    paths = ["/proc/self/cwd", str(tmp_path / "f")]
    native = subprocess.run([sys.executable, "-c", RESOLVE_CACHED_PROBE, *paths],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    assert native[0] == "0x20 /proc/self/cwd EAGAIN", native
    r = yama_run("--", sys.executable, "-c", RESOLVE_CACHED_PROBE, *paths)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"0x20 {p} EAGAIN" for p in paths] + \
        [f"0x0 {p} ok" for p in paths], r.stdout


# -- the bounds: MAXSYMLINKS, a body of PATH_MAX - 1, a path of PATH_MAX -----------------

@pytest.fixture
def bounds(area):
    write(area / "f", "END")
    for n in (40, 41):                              # a chain of n links ending at f
        prev = "f"
        for i in range(n - 1, -1, -1):
            prev = str(link(prev, area / f"c{n}-{i}").name)
    link("./" * 2047 + "f", area / "long")          # 4,095 bytes
    return area


@pytest.mark.parametrize("op", ["open", "stat"])
def test_bounds_as_natively(probe, bounds, quiet, op):
    """ELOOP after exactly 40 links, a body of 4,095 bytes followed, a path of
    4,095 bytes walked and one of 4,096 ENAMETOOLONG: as the kernel."""
    cases = {"c40-0": None, "c41-0": "err:ELOOP", "long": None,
             "./" * 2047 + "f": None, "./" * 2047 + "/f": "err:ENAMETOOLONG",
             "./" * 2045 + "long": None}
    for path, want in cases.items():
        args = ["x", "y", "0", op, path]
        native = race(probe, args, inside=AS_1001, cwd=bounds)
        if want:
            assert native == {want: 1}, (path, native)
        else:
            assert list(native)[0].startswith(("read:END", "ino:")), (path, native)
        assert race(probe, args, launcher=[], inside=AS_1001, cwd=bounds) == native, path
